"""`vending reader list`: serial ports with a bridge hint, and --probe saying which reader answers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.emulators.devices import PN532Device, RDM6300Device
from simulator.hardware.serial_ports import PortInfo, list_ports


@pytest.mark.parametrize(
    "vid,pid,hint",
    [
        (0x1A86, 0x7523, "CH340/CH341 (WCH)"),
        (0x10C4, 0xEA60, "CP210x (Silicon Labs)"),
        (0x0403, 0x6001, "FT232R (FTDI)"),
        (0x067B, 0x2303, "PL2303 (Prolific)"),
        (0x0403, 0x1234, "an FTDI bridge"),
        (0x2341, 0x0043, ""),
        (None, None, ""),
    ],
)
def test_the_usual_usb_uart_bridges_are_named(vid, pid, hint):
    info = PortInfo("/dev/ttyUSB0", "USB Serial", vid, pid)
    assert info.bridge == hint
    assert info.usb_id == (f"{vid:04X}:{pid:04X}" if vid is not None else "-")


def test_probe_names_the_reader_on_each_port_and_why_nothing_answered(closing):
    pn532 = closing(PN532Device().start())
    rdm6300 = closing(RDM6300Device().start())
    quiet = closing(RDM6300Device().start())  # an RDM6300 with no tag says nothing
    rdm6300.place("67003B51C6")
    ports = [pn532.path, rdm6300.path, quiet.path, "/nonexistent/ttyUSB9"]
    args = ["reader", "list", "--probe", "--json"] + [arg for path in ports for arg in ("--port", path)]
    result = CliRunner().invoke(app, args, prog_name="vending")
    assert result.exit_code == 0, result.output
    answers = {record["port"]: record["probe"] for record in map(json.loads, result.output.splitlines())}
    assert answers[pn532.path] == f"pn532: PN532 v1.6 support 0x07 (reader URL pn532:{pn532.path})"
    assert answers[rdm6300.path].startswith("rdm6300: a tag frame at 9600 baud")
    assert answers[quiet.path].startswith("nothing answered")
    assert answers["/nonexistent/ttyUSB9"].startswith("cannot open")
    assert {record["port"] for record in map(json.loads, result.output.splitlines())} >= {
        info.device for info in list_ports()
    }


def test_a_listening_reader_is_heard_past_noise_and_a_corrupt_first_frame():
    from firmware.readers import rdm6300_frames
    from simulator.hardware.serial_ports import heard

    good = rdm6300_frames.encode(rdm6300_frames.Tag("67003B51C6"))
    corrupt = good[:11] + b"00" + good[13:]
    assert rdm6300_frames.decode(corrupt)[1] is not None  # a whole frame, reported as corrupt
    assert not heard(rdm6300_frames.decode, b"\x13\x37" + corrupt, rdm6300_frames.Tag)
    assert heard(rdm6300_frames.decode, b"\x13\x37" + corrupt + good, rdm6300_frames.Tag)
    assert not heard(rdm6300_frames.decode, good[:-1], rdm6300_frames.Tag)
