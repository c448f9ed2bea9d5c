"""An emulator's control channel answers every line, and a bad one changes nothing and kills nothing."""

from __future__ import annotations

import pytest

from simulator.emulators.devices import DEVICES


@pytest.mark.parametrize("protocol", sorted(DEVICES))
def test_bad_control_lines_are_answered_and_the_device_goes_on(protocol, tmp_path, closing):
    device = closing(DEVICES[protocol](tmp_path / "reader0").start())
    for line, answer in [
        ("tap ZZZZ", "error: tap ZZZZ: a uid is"),
        ("tap 04A1", "error: tap 04A1: a uid is"),
        ("place", "error: place takes 1 argument(s): place UID"),
        ("fault smoke", "error: unknown fault 'smoke'"),
        ("remove now", "error: remove takes no argument(s)"),
        ("dance", "error: unknown command 'dance'; commands: place UID; tap UID"),
    ]:
        assert device.command(line).startswith(answer), line
        assert device.card is None, f"{line!r} changed the field"
    assert device.command("help").startswith("commands: place UID; tap UID; remove; fault ")
    uid = "67003B51C6" if protocol == "rdm6300" else "04A1B2C3D4E5F6"
    assert device.command(f"place {uid}") == "ok" and device.card == uid
    assert device._thread.is_alive(), "the emulator's thread survived every bad line"
