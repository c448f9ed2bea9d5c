"""The PN532 chip model on its own: each command's answer as UM0701-02 section 7 gives it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.emulators.pn532_chip import BAUD_RATES, CIU_RESET, Card, Pending, Pn532Chip, crc_a


class Field:
    def __init__(self, uid: str | None = None) -> None:
        self.uid = uid

    def __call__(self) -> str | None:
        return self.uid


def chip_with(uid: str | None = None) -> tuple[Pn532Chip, Field]:
    field = Field(uid)
    return Pn532Chip(field), field


def test_line_test_echoes_and_self_tests_pass():
    chip, _ = chip_with()
    assert chip.execute(0x00, b"\x00libnfc") == b"\x00libnfc"
    assert chip.execute(0x00, b"\x01") == b"\x00" and chip.execute(0x00, b"\x02") == b"\x00"
    assert chip.execute(0x00, b"\x99") is None  # no such test: syntax error frame


def test_registers_start_at_their_reset_values_and_return_what_was_written():
    chip, _ = chip_with()
    assert chip.execute(0x06, bytes.fromhex("6302 6303 6304")) == bytes([0x00, 0x00, CIU_RESET[0x6304]])
    assert chip.execute(0x08, bytes.fromhex("6303 80 633D 07")) == b""
    assert chip.execute(0x06, bytes.fromhex("6303 633D")) == b"\x80\x07"
    assert chip.execute(0x06, b"\x63") is None and chip.execute(0x08, b"\x63\x03") is None


def test_firmware_general_status_and_sam_configuration():
    chip, field = chip_with("04A1B2C3")
    assert chip.execute(0x02, b"") == bytes.fromhex("32010607")
    assert chip.execute(0x14, b"\x01") == b"" and chip.sam_mode == 1
    assert chip.execute(0x14, b"\x05") is None
    assert chip.execute(0x04, b"") == bytes([0x00, 0x00, 0x00, 0x00])  # no error, field off, no target
    chip.execute(0x4A, b"\x01\x00")
    assert chip.execute(0x04, b"") == bytes([0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00])


def test_rf_configuration_checks_each_item_s_length():
    chip, _ = chip_with()
    for item, size in {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}.items():
        assert chip.execute(0x32, bytes([item]) + bytes(size)) == b""
        assert chip.execute(0x32, bytes([item]) + bytes(size + 1)) is None
    assert chip.execute(0x32, b"\x03\x00") is None


def test_serial_speed_changes_only_after_the_host_acks_the_answer():
    chip, _ = chip_with()
    assert chip.execute(0x10, b"\x07") == b"" and chip.baud == 115200
    assert chip.host_acked() == 921600 and chip.baud == BAUD_RATES[7]
    assert chip.host_acked() is None
    assert chip.execute(0x10, b"\x09") is None


def test_power_down_puts_the_chip_to_sleep_and_any_command_wakes_it():
    chip, _ = chip_with("04A1B2C3")
    chip.execute(0x4A, b"\x01\x00")
    assert chip.execute(0x16, b"\x10") == b"\x00" and chip.asleep and not chip.listed
    chip.execute(0x02, b"")
    assert not chip.asleep


@pytest.mark.parametrize(
    "uid,atqa,sak",
    [("DEADBEEF", "0004", 0x08), ("0416C6C2D73881", "0044", 0x00), ("0102030405060708090A", "0084", 0x00)],
)
def test_in_list_passive_target_reports_uid_atqa_and_sak(uid, atqa, sak):
    chip, _ = chip_with(uid)
    raw = bytes.fromhex(uid)
    assert chip.execute(0x4A, b"\x01\x00") == b"\x01\x01" + bytes.fromhex(atqa) + bytes([sak, len(raw)]) + raw
    assert chip.execute(0x4A, b"\x01\x00" + Card(raw).cascaded) is not None  # select this very card
    other = Card(bytes.fromhex("04" * len(raw))).cascaded
    assert isinstance(chip.execute(0x4A, b"\x01\x00" + other), Pending)


def test_a_search_waits_for_a_card_gives_up_after_its_retries_or_is_aborted():
    chip, field = chip_with()
    assert chip.execute(0x4A, b"\x01\x00") == Pending(None)  # MxRtyPassiveActivation FF: until a card
    field.uid = "04A1B2C3"
    assert chip.retry() == b"\x01\x01\x00\x04\x08\x04\x04\xa1\xb2\xc3"
    field.uid = None
    chip.execute(0x32, b"\x05\xff\x01\x02")  # two retries: three tries
    assert chip.execute(0x4A, b"\x01\x00") == Pending(3 * 0.005)
    assert chip.give_up() == b"\x00"
    assert chip.execute(0x06, b"\x63\x39") == b"\x26"  # the unanswered REQA left in the FIFO (nfcpy reads it)
    chip.execute(0x4A, b"\x01\x00")
    chip.abort()
    assert chip.retry() is None


def test_in_auto_poll_answers_the_first_type_a_card_type_asked_for():
    chip, field = chip_with()
    assert chip.execute(0x60, b"\x14\x02\x20\x10\x11") == Pending(20 * 3 * 2 * 0.15)
    field.uid = "04A1B2C3"
    assert chip.retry() == b"\x01\x10\x09\x01\x00\x04\x08\x04\x04\xa1\xb2\xc3"
    assert chip.execute(0x60, b"\x14\x00\x10") is None  # period 0 is out of range


def test_reading_through_data_exchange_and_communicate_thru_with_and_without_crc():
    chip, field = chip_with("04A1B2C3D4E5F6")
    assert chip.execute(0x40, b"\x01\x30\x00") == b"\x27"  # no target listed yet
    chip.execute(0x4A, b"\x01\x00")
    page0_3 = chip.execute(0x40, b"\x01\x30\x00")
    assert page0_3[0] == 0 and page0_3[1:4] == bytes.fromhex("04A1B2") and len(page0_3) == 17
    assert page0_3[4] == 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2  # BCC0
    chip.execute(0x08, b"\x63\x03\x00")  # RxCRCEn off: the card's CRC_A comes through
    thru = chip.execute(0x42, b"\x30\x00")
    assert thru[1:17] == page0_3[1:] and thru[17:] == crc_a(page0_3[1:])
    assert chip.execute(0x42, b"\x60\x00") == b"\x01"  # an Ultralight ignores a Classic authentication
    assert chip.execute(0x54, b"\x01") == b"\x00"
    field.uid = None
    assert chip.execute(0x40, b"\x01\x30\x00") == b"\x01" and chip.execute(0x54, b"\x01") == b"\x01"
    assert chip.execute(0x44, b"\x01") == b"\x00" and chip.execute(0x52, b"\x01") == b"\x00"
    assert chip.execute(0x52, b"\x01") == b"\x27"


def test_crc_a_matches_iso_14443_3_annex_b():
    assert crc_a(b"\x00\x00") == bytes.fromhex("A01E")
    assert crc_a(b"\x12\x34") == bytes.fromhex("26CF")


def test_unknown_commands_and_nfc_dep_without_a_peer():
    chip, _ = chip_with()
    assert chip.execute(0x8C, bytes(37)) is None  # TgInitAsTarget: not emulated, syntax error frame
    assert chip.execute(0x56, b"\x01\x00\x00") == b"\x01"  # InJumpForDEP: nobody answers


@given(code=st.integers(0, 255), params=st.binary(max_size=40))
def test_no_command_crashes_the_chip(code, params):
    chip, _ = chip_with("04A1B2C3")
    reply = chip.execute(code, params)
    assert reply is None or isinstance(reply, bytes | Pending)
