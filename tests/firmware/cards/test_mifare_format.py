"""The MIFARE Classic formats against the data sheet's own examples, and the campus purse laid out on them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from firmware.cards import mifare as m
from firmware.cards.purse import (
    BALANCE,
    CardError,
    CardRecord,
    Sam,
    block,
    issue_image,
    keys_image,
    put,
    read_image,
    topup_image,
)

SAM = Sam(bytes(range(32)))
UID = bytes.fromhex("04A1B2C3")
RECORD = CardRecord("student", "353301", date(2026, 3, 2))


def test_a_value_block_is_the_data_sheet_s_example_and_refuses_disagreeing_copies():
    # NXP MF1S50yyX: 1234567 at block 17
    assert m.encode_value(1234567, 17) == bytes.fromhex("87D612007829EDFF87D6120011EE11EE")
    assert m.decode_value(m.encode_value(-5, 4)) == (-5, 4)
    broken = bytearray(m.encode_value(500, 4))
    broken[8] ^= 1
    with pytest.raises(m.FormatError, match="copies disagree"):
        m.decode_value(bytes(broken))


def test_access_bits_encode_as_the_data_sheet_places_them():
    assert m.TRANSPORT.encode() == bytes.fromhex("FF0780")  # the delivery state
    assert m.VALUE_SECTOR.encode() == bytes.fromhex("08778F")  # value blocks 110, trailer 011
    assert m.Access.decode(bytes.fromhex("08778F")) == m.VALUE_SECTOR
    with pytest.raises(m.FormatError, match="inverted copies"):
        m.Access.decode(bytes.fromhex("08778E"))


def test_a_card_is_issued_read_and_topped_up_with_its_backup_kept():
    image = issue_image(UID, RECORD, 500, SAM)
    state = read_image(image, SAM)
    assert (state.record, state.balance, state.backup, state.log) == (RECORD, 500, 500, ())
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    topped = read_image(topup_image(image, 200, SAM, "7-ELEVEN-0042", at), SAM)
    assert (topped.balance, topped.backup) == (700, 500)
    (entry,) = topped.log  # the top-up is numbered on the card, as every debit is
    assert (entry.counter, entry.amount, entry.balance, entry.day_spent) == (1, -200, 700, 0)
    with pytest.raises(CardError, match="past its ceiling of NT\\$10000"):
        topup_image(image, 9600, SAM, "7-ELEVEN-0042", at)


def test_a_record_the_issuer_did_not_write_is_refused():
    image = bytearray(issue_image(UID, RECORD, 500, SAM))
    record = bytearray(block(image, 6))
    record[1] = 1  # student -> staff, without the issuer's key
    put(image, 6, bytes(record))
    with pytest.raises(CardError, match="MAC is not the issuer's"):
        read_image(bytes(image), SAM)
    with pytest.raises(CardError, match="MAC"):
        read_image(issue_image(UID, RECORD, 500, SAM), Sam(b"\x01" * 32))  # another issuer's master key
    put(image, BALANCE, b"\x00" * 16)


def test_each_card_has_its_own_sector_keys_and_the_keys_dump_carries_them():
    other = bytes.fromhex("04A1B2C4")
    assert SAM.key_a(UID, 1) != SAM.key_a(other, 1) and SAM.key_a(UID, 1) != SAM.key_a(UID, 2)
    assert SAM.key_a(UID, 1) != SAM.key_b(UID, 1)
    image = issue_image(UID, RECORD, 500, SAM)
    keys = keys_image(image, SAM)
    assert block(keys, 7)[:6] == SAM.key_a(UID, 1) and block(keys, 7)[10:] == SAM.key_b(UID, 1)
    assert block(keys, 3)[:6] == m.TRANSPORT_KEY  # sectors the purse does not use keep the transport keys
    assert "00010203" not in repr(SAM)
