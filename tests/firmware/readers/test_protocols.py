"""Each reader protocol is declared once (firmware/readers/registry.py) and everything else reads it."""

from __future__ import annotations

import ast
import re

import pytest

from firmware.errors import VendingError
from firmware.readers.registry import BY_NAME, PROTOCOLS, SERIAL_PROTOCOLS, parse_reader_url
from simulator.emulators.devices import DEVICES
from simulator.scenarios.tap_sources import unreadable_cards
from tests.conftest import ROOT


def test_every_serial_protocol_has_an_emulator_at_its_declared_speed_and_no_other(tmp_path):
    assert set(DEVICES) == {protocol.name for protocol in SERIAL_PROTOCOLS}
    for name, device_class in DEVICES.items():
        device = device_class(tmp_path / name)
        try:
            assert device.port.baud == BY_NAME[name].baud
        finally:
            device.port.close()


def test_a_url_takes_its_protocol_s_default_baud_and_only_its_own_options():
    for protocol in SERIAL_PROTOCOLS:
        assert parse_reader_url(f"{protocol.name}:/dev/ttyUSB0").baud == protocol.baud
    assert parse_reader_url("line:/dev/ttyUSB0?format=dec&endian=le").options == {"format": "dec", "endian": "le"}
    with pytest.raises(Exception, match="format is hex or dec"):
        parse_reader_url("line:/dev/ttyUSB0?format=oct")
    assert parse_reader_url("pn532:/dev/ttyUSB0?debounce=0.25").debounce_s == 0.25
    assert parse_reader_url("virtual:").baud == 0  # no serial line, no baud to check
    looped = parse_reader_url("pn532:loop://?logging=debug&debounce=0")  # pyserial's own options after a URL
    assert (looped.port, looped.debounce_s) == ("loop://?logging=debug", 0)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("baud=-5", "baud must be a positive number of bits a second, not -5"),  # was "offline" for good
        ("baud=0", "baud must be a positive number of bits a second, not 0"),
        ("debounce=nan", "debounce is 0 to 60 seconds, not nan"),  # every frame of a held card a new tap
        ("debounce=1e400", "debounce is 0 to 60 seconds, not inf"),  # each card one tap, ever
        ("debounce=-1", "debounce is 0 to 60 seconds, not -1.0"),
        # a typo was kept as part of the device's path, which no port has: "offline" for good
        ("debouce=0", "unknown option 'debouce'; line takes baud, debounce, endian, format"),
        ("format=dec&format=hex", "format is given twice"),  # the last one was taken
    ],
)
def test_a_url_s_baud_and_debounce_are_refused_out_of_range(query, reason):
    with pytest.raises(VendingError, match=re.escape(f"reader 'line:/dev/ttyUSB0?{query}': {reason}")):
        parse_reader_url(f"line:/dev/ttyUSB0?{query}")


def test_the_scenario_check_reads_the_uid_sizes_the_protocol_declares():
    cards = {"amy": "04A1B2C3D4E5F6", "tag": "67003B51C6"}
    assert [entry.split(" ")[0] for entry in unreadable_cards("emulate:rdm6300", cards)] == ["amy"]
    assert [entry.split(" ")[0] for entry in unreadable_cards("pn532:/dev/ttyUSB0", cards)] == ["tag"]
    assert unreadable_cards("virtual:", cards) == []
    assert all(
        protocol.reads("04A1B2C3") == (4 in protocol.uid_bytes or not protocol.uid_bytes) for protocol in PROTOCOLS
    )


def calls_to_time(path) -> list[str]:
    """Calls of ``time.monotonic()``, ``time.sleep(...)``, ... in ``path`` (a default argument is no call)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "time":
            found.append(f"{path.relative_to(ROOT)}:{func.lineno} time.{func.attr}")
    return found


def test_the_drivers_wait_only_on_their_injected_clock():
    drivers = sorted((ROOT / "firmware" / "readers").glob("*.py"))
    assert len(drivers) > 5
    assert [found for path in drivers for found in calls_to_time(path)] == []


def test_the_pn532_driver_keeps_chip_commands_policy_and_transport_apart():
    """nfcpy's split: the command set never opens a port or decides when to search; the policy never frames bytes."""
    commands = (ROOT / "firmware/readers/pn532_commands.py").read_text()
    policy = (ROOT / "firmware/readers/pn532.py").read_text()
    assert "serial" not in commands and "SerialReader" not in commands and "monotonic" not in commands
    assert "pn532_frames" not in policy and "encode(" not in policy
