"""The emulated PN532 as the two host stacks people use with a real one see it: nfcpy and libnfc.

nfcpy's ``pn532`` driver and libnfc's ``pn532_uart`` (nfc-list, nfc-poll from Debian's libnfc-bin and
libnfc-examples) open the emulator's pty, list the card's uid and see it go when it is removed.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nfc
import nfc.clf
import nfc.clf.pn532
import nfc.clf.transport
import pytest

from simulator.emulators.devices import PN532Device
from tests.support.packages import require_program
from tests.support.waiting import eventually

UIDS = ["04A1B2C3", "04A1B2C3D4E5F6", "0102030405060708090A"]


@pytest.fixture
def pn532(closing) -> PN532Device:
    return closing(PN532Device().start())


@contextmanager
def nfcpy_on(device: PN532Device) -> Iterator[nfc.ContactlessFrontend]:
    """``ContactlessFrontend("tty:NAME:pn532")`` through a /dev link when this user may make one.

    nfcpy looks a serial device up by its name in /dev; elsewhere the same driver is opened on the
    pty's own path, one step below that lookup.
    """
    link: Path | None = Path("/dev") / f"ttyVEND{os.getpid()}"
    try:
        link.symlink_to(device.path)  # type: ignore[union-attr]
    except OSError:
        frontend = nfc.ContactlessFrontend()
        frontend.device = nfc.clf.pn532.init(nfc.clf.transport.TTY(device.path))
        link = None
    else:
        frontend = nfc.ContactlessFrontend(f"tty:{link.name}:pn532")  # type: ignore[union-attr]
    try:
        yield frontend
    finally:
        frontend.close()
        if link is not None:
            link.unlink()


def test_nfcpy_opens_the_emulator_and_senses_each_uid_until_it_is_removed(pn532):
    with nfcpy_on(pn532) as frontend:
        assert "PN532v1.6" in str(frontend.device)
        assert frontend.sense(nfc.clf.RemoteTarget("106A")) is None
        for uid in UIDS:
            pn532.place(uid)
            target = frontend.sense(nfc.clf.RemoteTarget("106A"))
            assert target is not None and target.sdd_res.hex().upper() == uid
            pn532.remove()
            assert frontend.sense(nfc.clf.RemoteTarget("106A")) is None
    # nfcpy's start-up line test, its faster serial speed and back, and its power-down at close
    assert {0x00, 0x10, 0x12, 0x32, 0x06, 0x08, 0x16} <= set(pn532.commands)
    assert pn532.chip.baud == 115200 and pn532.chip.asleep


def test_nfcpy_connects_to_a_7_byte_card_as_a_type_2_tag(pn532):
    pn532.place("04A1B2C3D4E5F6")
    with nfcpy_on(pn532) as frontend:
        tag = frontend.connect(rdwr={"on-connect": lambda tag: False}, terminate=lambda: False)
        assert tag.type == "Type2Tag" and tag.identifier.hex().upper() == "04A1B2C3D4E5F6"
        assert 0x42 in pn532.commands  # READ through InCommunicateThru


def libnfc(program: str, device: PN532Device, **kwargs) -> subprocess.Popen[str]:
    env = dict(os.environ, LIBNFC_DEVICE=f"pn532_uart:{device.path}")
    return subprocess.Popen([program], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def listed_uids(output: str) -> list[str]:
    return ["".join(line.split(":", 1)[1].split()).upper() for line in output.splitlines() if "UID (NFCID1)" in line]


@pytest.mark.parametrize("uid", [*UIDS, None], ids=[*UIDS, "no-card"])
def test_nfc_list_lists_the_uid_on_the_emulator(pn532, uid):
    program = require_program("nfc-list", "libnfc-bin")
    if uid is not None:
        pn532.place(uid)
    out, err = libnfc(program, pn532).communicate(timeout=60)
    assert "Unable to open" not in err and "opened" in out, err
    assert listed_uids(out) == ([uid] if uid else [])


@pytest.mark.parametrize("uid", UIDS[:2])
def test_nfc_poll_finds_the_card_and_waits_until_it_is_removed(pn532, uid):
    program = require_program("nfc-poll", "libnfc-examples")
    process = libnfc(program, pn532)
    try:
        time.sleep(0.5)
        pn532.place(uid)
        eventually(lambda: pn532.reads > 0, 20, "nfc-poll finding the card")
        time.sleep(1.0)
        assert process.poll() is None  # still waiting: the card is on the reader
        pn532.remove()
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert listed_uids(out) == [uid] and "Waiting for card removing...done." in out
    assert re.search(r"Target Released", err)
