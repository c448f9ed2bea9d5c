"""The emulated MIFARE Classic card enforces keys, access bits and the transfer buffer; libnfc reads it."""

from __future__ import annotations

import os
import struct
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

from firmware.cards import mifare as m
from firmware.cards.purse import BACKUP, BALANCE, CardRecord, Sam, issue_image, keys_image, read_image
from simulator.emulators.devices import PN532Device
from simulator.emulators.mifare_classic import ClassicCard
from tests.support.packages import require_program

SAM = Sam(bytes(range(32)))
UID = bytes.fromhex("04A1B2C3")


def card() -> ClassicCard:
    return ClassicCard(bytearray(issue_image(UID, CardRecord("student", "353301", date(2026, 3, 2)), 500, SAM)))


def auth(kind: int, block: int, key: bytes) -> bytes:
    return bytes([kind, block]) + key + UID


def operand(amount: int) -> bytes:
    return struct.pack("<I", amount)


def test_a_sector_answers_only_after_its_key_and_a_wrong_key_mutes_the_card_until_selected():
    purse = card()
    assert purse.exchange(bytes([m.READ, BALANCE])) is None, "no authentication: no answer"
    purse.select()
    assert purse.exchange(auth(m.AUTH_A, BALANCE, m.TRANSPORT_KEY)) is None
    assert purse.exchange(auth(m.AUTH_A, BALANCE, SAM.key_a(UID, 1))) is None, "muted after a wrong key"
    purse.select()
    assert purse.exchange(auth(m.AUTH_A, BALANCE, SAM.key_a(UID, 1))) == b""
    assert m.decode_value(purse.exchange(bytes([m.READ, BALANCE])) or b"") == (500, BALANCE)
    trailer = purse.exchange(bytes([m.READ, 7])) or b""
    assert trailer[:6] == bytes(6) and trailer[6:9] == m.VALUE_SECTOR.encode(), "key A always reads as zeros"


def test_key_a_debits_through_the_transfer_buffer_and_only_key_b_credits():
    purse = card()
    purse.exchange(auth(m.AUTH_A, BALANCE, SAM.key_a(UID, 1)))
    assert purse.exchange(bytes([m.DECREMENT, BALANCE]) + operand(25)) == b""
    assert m.decode_value(purse.read_block(BALANCE))[0] == 500, "nothing stored before TRANSFER"
    assert purse.exchange(bytes([m.TRANSFER, BALANCE])) == b""
    assert m.decode_value(purse.read_block(BALANCE)) == (475, BALANCE)
    assert purse.exchange(bytes([m.RESTORE, BACKUP])) == b"" and purse.exchange(bytes([m.TRANSFER, BALANCE])) == b""
    assert m.decode_value(purse.read_block(BALANCE))[0] == 500, "RESTORE + TRANSFER puts the backup back"
    assert purse.exchange(bytes([m.INCREMENT, BALANCE]) + operand(1000)) is None, "a credit needs key B"
    purse.select()
    purse.exchange(auth(m.AUTH_A, BALANCE, SAM.key_a(UID, 1)))
    assert purse.exchange(bytes([m.WRITE, BALANCE]) + m.encode_value(9999, BALANCE)) is None, "writes need key B"
    purse.select()
    purse.exchange(auth(m.AUTH_B, BALANCE, SAM.key_b(UID, 1)))
    assert purse.exchange(bytes([m.INCREMENT, BALANCE]) + operand(100)) == b""
    assert purse.exchange(bytes([m.TRANSFER, BALANCE])) == b"" and m.decode_value(purse.read_block(BALANCE))[0] == 600


def test_a_trailer_that_would_block_its_sector_is_refused_and_block_0_never_changes():
    purse = card()
    purse.exchange(auth(m.AUTH_B, 7, SAM.key_b(UID, 1)))
    bad = SAM.key_a(UID, 1) + bytes.fromhex("08778E69") + SAM.key_b(UID, 1)  # inverted copies do not match
    assert purse.exchange(bytes([m.WRITE, 7]) + bad) is None
    purse.select()
    purse.exchange(auth(m.AUTH_A, 0, m.TRANSPORT_KEY))
    assert purse.exchange(bytes([m.WRITE, 0]) + bytes(16)) is None
    assert purse.uid == UID


def test_a_tear_leaves_the_card_after_its_nth_write():
    purse = card()
    purse.tear_after = 1
    purse.exchange(auth(m.AUTH_A, BALANCE, SAM.key_a(UID, 1)))
    purse.exchange(bytes([m.DECREMENT, BALANCE]) + operand(25))
    assert purse.exchange(bytes([m.TRANSFER, BALANCE])) == b"" and purse.torn
    assert purse.exchange(bytes([m.READ, BALANCE])) is None, "gone from the field"


def test_libnfc_nfc_mfclassic_reads_the_emulated_card_and_vending_card_show_decodes_the_dump(tmp_path: Path, closing):
    program = require_program("nfc-mfclassic", "libnfc-bin")
    cards = tmp_path / "cards"
    cards.mkdir()
    image = issue_image(UID, CardRecord("staff", "353301", date(2026, 3, 2)), 1234, SAM)
    (cards / "04A1B2C3.mfd").write_bytes(image)
    (tmp_path / "keys.mfd").write_bytes(keys_image(image, SAM))
    reader = closing(PN532Device(cards=cards).start())
    assert reader.command("place 04A1B2C3") == "ok"
    env = dict(os.environ, LIBNFC_DEVICE=f"pn532_uart:{reader.path}")
    read = [program, "r", "a", "u", str(tmp_path / "dump.mfd"), str(tmp_path / "keys.mfd")]
    out = subprocess.run(read, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Done, 64 of 64 blocks read." in out.stdout, out.stdout + out.stderr
    dumped = (tmp_path / "dump.mfd").read_bytes()
    assert read_image(dumped, SAM).balance == 1234 and read_image(dumped, SAM).record.profile == "staff"
    without_keys = [program, "r", "a", "u", str(tmp_path / "guess.mfd")]  # the default keys open no purse sector
    guessed = subprocess.run(without_keys, env=env, capture_output=True, text=True, timeout=60)
    assert guessed.returncode != 0 or "64 of 64" not in guessed.stdout


def test_the_reader_writes_the_card_back_to_its_image_when_it_leaves_and_tears_on_command(tmp_path: Path, closing):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "04A1B2C3.mfd").write_bytes(bytes(card().image))
    reader = closing(PN532Device(cards=cards).start())
    assert reader.command("fault tear 1").startswith("error: fault tear: no card image in the field")
    assert reader.command("fault tear").startswith("error: fault tear takes the number of writes")
    assert reader.command("place 04A1B2C4").startswith("error: place 04A1B2C4: no card image")
    assert reader.command("place 04A1B2C3") == "ok"
    assert reader.command("fault tear ²") == "error: fault tear takes a number of writes from 1, got '²'"
    assert reader.command("fault tear 2") == "ok"
    chip = reader.chip
    assert chip.execute(0x4A, b"\x01\x00")[:1] == b"\x01"  # InListPassiveTarget: one target
    exchange = [auth(m.AUTH_A, BALANCE, SAM.key_a(UID, 1)), bytes([m.RESTORE, BALANCE]), bytes([m.TRANSFER, BACKUP])]
    exchange += [bytes([m.DECREMENT, BALANCE]) + operand(30), bytes([m.TRANSFER, BALANCE])]
    answers = [chip.execute(0x40, b"\x01" + data) for data in exchange]
    assert answers[:3] == [b"\x00"] * 3 and answers[3:] == [b"\x00", b"\x00"]
    reader.handle_torn()  # the device notices the card left after its second write
    assert reader.card is None
    state = read_image((cards / "04A1B2C3.mfd").read_bytes(), SAM)
    assert (state.balance, state.backup) == (470, 500), "written back with both writes"


def driver_on_a_card_dir(tmp_path: Path, closing, options: str = "") -> tuple[PN532Device, Any, Any]:
    """The purse card's image in tmp_path/cards, the emulated PN532 on it, and the real driver opened on that."""
    from datetime import UTC, datetime

    from firmware.readers.pn532 import PN532Reader
    from firmware.readers.registry import open_reader
    from simulator.hardware.virtual import VirtualClock

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "04A1B2C3.mfd").write_bytes(bytes(card().image))
    device = closing(PN532Device(tmp_path / "reader0", cards=cards).start())
    clock = VirtualClock(datetime(2026, 3, 2, 8, tzinfo=UTC))
    reader = closing(open_reader(f"pn532:{tmp_path / 'reader0'}{options}", clock))
    assert isinstance(reader, PN532Reader)
    reader.read_tap(0.05)
    return device, reader, clock


def test_the_pn532_driver_reads_and_debits_the_purse_over_a_pty_with_the_real_commands(tmp_path: Path, closing):

    from firmware.cards.purse_io import debit, read_purse
    from tests.support.waiting import eventually

    cards = tmp_path / "cards"
    device, reader, clock = driver_on_a_card_dir(tmp_path, closing)
    device.place("04A1B2C3")
    tap = eventually(lambda: reader.read_tap(0.1), 10, "the card's tap")
    assert tap is not None
    with reader.card_session(tap.uid) as tag:
        state, _ = read_purse(tag, SAM)
        assert state.balance == 500
        after = debit(tag, SAM, 25, "TPE-DAAN-JH-01", clock.now())
    assert after.balance == 475 and {0x40, 0x4A, 0x52} <= set(device.commands)
    device.remove()  # the card leaves with what the machine wrote to it
    assert read_image((cards / "04A1B2C3.mfd").read_bytes(), SAM).balance == 475


def test_a_card_lifted_at_once_or_a_reader_unplugged_mid_transaction_is_a_card_gone_and_the_reader_comes_back(
    tmp_path: Path, closing
):
    """The chip searches until a card comes (MxRtyPassiveActivation FF): a card that left never answers.

    Listing it again for the transaction must say the card has gone, not that the reader is offline;
    and a reader that dies mid-transaction is a card gone to the payment (settled at its next tap),
    while the driver reopens the port once it is back.
    """

    import pytest

    from firmware.cards.purse_io import read_purse
    from firmware.cards.tag import CardGone
    from tests.support.waiting import eventually

    device, reader, _ = driver_on_a_card_dir(tmp_path, closing, "?debounce=0")

    def tapped(what: str) -> str:
        tap = eventually(lambda: reader.read_tap(0.1), 20, what)
        assert tap is not None
        return tap.uid

    device.tap("04A1B2C3")  # read once by the search, then lifted
    with pytest.raises(CardGone, match="no longer on the reader"), reader.card_session(tapped("a tap")) as tag:
        read_purse(tag, SAM)
    assert reader.online, "a card that left says nothing about the reader"
    device.place("04A1B2C3")
    with pytest.raises(CardGone, match="stopped answering"), reader.card_session(tapped("a held card")) as tag:
        device.unplug()
        read_purse(tag, SAM)
    assert reader.online is False, "the port was dropped, for the reader thread to reopen"
    assert device.command("replug").startswith("replugged")
    device.place("04A1B2C3")
    with reader.card_session(tapped("a tap after the reader came back")) as tag:
        assert read_purse(tag, SAM)[0].balance == 500
    assert reader.online


def test_the_card_latency_bench_measures_card_mode_sales_and_the_wire_floor_of_what_they_sent():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from bench.card_latency import BAUD, measure

    samples, floors = measure(3)
    assert len(samples) == len(floors) == 3
    assert all(floor > 100 * 10 / BAUD for floor in floors), "a card-mode sale's frames are hundreds of bytes"
    assert all(sample > 0 for sample in samples)


def test_a_machine_in_card_mode_sells_from_the_purse_through_the_pn532_driver_and_survives_a_pull(
    tmp_path: Path, closing
):
    """The node as `vending serve` builds it, the real driver over a pty, the purse on the emulated card."""
    from dataclasses import replace
    from datetime import datetime

    from firmware.app.node import Node
    from firmware.config.machine import load_machine
    from firmware.controller.records import Hardware
    from firmware.readers.registry import open_reader
    from simulator.hardware.virtual import RecordingDisplay, VirtualClock, VirtualDispenser
    from simulator.paths import MACHINES
    from simulator.scenarios.purses import simulation_card_master
    from simulator.term_keys import simulation_term_key
    from tests.support.waiting import eventually

    start = datetime.fromisoformat("2026-03-02T09:00:00+08:00")
    state, cards = tmp_path / "machine", tmp_path / "cards"
    cards.mkdir()
    sam = simulation_card_master(state)  # the SAM's key in the state dir, as a card-mode machine has it
    image = cards / "04A1B2C3.mfd"
    image.write_bytes(issue_image(UID, CardRecord("student", "353301", start.date()), 100, sam))
    setup = load_machine(MACHINES / "demo.yaml")
    payment = setup.config.payment.model_copy(update={"mode": "card"})
    setup = replace(setup, config=setup.config.model_copy(update={"payment": payment}))
    simulation_term_key(state, start.date())
    clock = VirtualClock(start)
    dispenser = VirtualDispenser({code: slot.stock for code, slot in setup.config.slots.items()})
    node = Node(setup, state, Hardware(clock, RecordingDisplay(), dispenser)).start(connect=False)
    device = closing(PN532Device(tmp_path / "reader0", cards=cards).start())
    reader = closing(open_reader(f"pn532:{tmp_path / 'reader0'}?debounce=0", clock))
    reader.read_tap(0.05)
    controller = node.controller

    def last() -> tuple[str, str | None]:
        done = controller.last_transaction
        assert done is not None
        return done.outcome, done.reason

    def tap_and_lift() -> None:
        device.place("04A1B2C3")
        tap = eventually(lambda: reader.read_tap(0.1), 10, "the card's tap")
        controller.present(tap)
        device.handle_torn()
        if device.image is not None:
            device.remove()

    controller.dispatch("select", "A1")
    tap_and_lift()
    assert last() == ("vended", None)
    assert read_image(image.read_bytes(), sam).balance == 75, "debited on the card, written back as it left"
    controller.dispatch("select", "A1")
    device.place("04A1B2C3")
    tap = eventually(lambda: reader.read_tap(0.1), 10, "the card's tap")
    assert device.command("fault tear 2") == "ok"  # pulled after the backup and the log entry
    controller.present(tap)
    assert last() == ("denied", "card_removed")
    device.handle_torn()
    assert read_image(image.read_bytes(), sam).balance == 75 and controller.state.value == "idle"
    controller.dispatch("select", "A2")
    tap_and_lift()  # its next tap voids the logged step, then the sale goes through
    assert last() == ("vended", None)
    final = read_image(image.read_bytes(), sam)
    assert (final.balance, [entry.amount for entry in final.log][:2]) == (55, [20, 0])
    assert node.invariant_total() == 25 + 20, "the machine's takings; the rest is on the card"
    node.close()


def serving_in_card_mode(tmp_path: Path, closing) -> tuple[PN532Device, subprocess.Popen, list[dict], Path]:
    """A NT$100 purse card issued into an emulated PN532's card dir, `vending serve --payment card` on it, A1 chosen."""
    from tests.conftest import VENDING
    from tests.simulator.emulators.test_serve_day import keypad, spawn_serve
    from tests.support.waiting import eventually

    keys, cards = tmp_path / "keys", tmp_path / "cards"
    cards.mkdir()
    assert subprocess.run([VENDING, "keys", "dev-set", "--dir", str(keys)], capture_output=True).returncode == 0
    issue = [VENDING, "card", "issue", "--uid", "04A1B2C3", "--purse", "100", "--keys", str(keys)]
    assert subprocess.run([*issue, "--out", str(cards / "04A1B2C3.mfd")], capture_output=True).returncode == 0
    device = closing(PN532Device(tmp_path / "reader0", cards=cards).start())
    serve, events = spawn_serve(tmp_path, closing, "--payment", "card", "--card-keys", str(keys))
    keypad(serve, "select A1")
    eventually(lambda: any(e["event"] == "selected" for e in events), what="the selection")
    return device, serve, events, keys


def test_vending_serve_in_card_mode_sells_from_the_card_on_the_emulated_reader(tmp_path: Path, closing):
    """The user's path: issue a card, put it on the emulated PN532, `vending serve --payment card`, select, tap."""
    import json

    from tests.conftest import VENDING
    from tests.simulator.emulators.test_serve_day import keypad
    from tests.support.waiting import eventually

    device, serve, events, keys = serving_in_card_mode(tmp_path, closing)
    device.place("04A1B2C3")  # held on the reader while the machine reads and debits it
    eventually(lambda: any(e["event"] in ("vended", "denied") for e in events), 20, "the decision")
    device.remove()
    keypad(serve, "quit")
    serve.wait(timeout=30)
    assert [e["event"] for e in events if e["event"] in ("vended", "denied")] == ["vended"]
    shown = subprocess.run(
        [VENDING, "card", "show", str(tmp_path / "cards" / "04A1B2C3.mfd"), "--keys", str(keys), "--json"],
        capture_output=True,
        text=True,
    )
    assert json.loads(shown.stdout)["purse"] == 75, "debited on the card itself, written back when it left"
    sam = tmp_path / "xdg-state" / "vending" / "TPE-DAAN-JH-01" / "card-master.key"
    assert sam.stat().st_mode & 0o777 == 0o600, "the SAM's key, installed private"


def test_vending_serve_in_card_mode_asks_for_a_card_lifted_too_soon_to_be_held_and_keeps_the_selection(
    tmp_path: Path, closing
):
    """A quick tap on the emulated PN532 (read once by the search, gone before the purse is read)."""
    from tests.simulator.emulators.test_serve_day import keypad
    from tests.support.waiting import eventually

    device, serve, events, keys = serving_in_card_mode(tmp_path, closing)
    device.tap("04A1B2C3")
    eventually(lambda: any(e["event"] == "card_unread" for e in events), 20, "the request to hold the card")
    shown = [e for e in events if e["event"] == "display"][-1]
    assert shown["key"] == "card_unread" and "hold it on the reader" in shown["en"]
    assert serve.poll() is None, "the machine runs on"
    device.place("04A1B2C3")  # held this time: the selection made before still stands
    eventually(lambda: any(e["event"] in ("vended", "denied") for e in events), 20, "the decision")
    device.remove()
    keypad(serve, "quit")
    assert serve.wait(timeout=30) == 0
    decided = [(e["event"], e.get("slot")) for e in events if e["event"] in ("vended", "denied")]
    assert decided == [("vended", "A1")], "nothing refused for the quick tap, and A1 sold on the next"
