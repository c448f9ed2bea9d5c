"""An emulator's control channel answers every line, and a bad one changes nothing and kills nothing."""

from __future__ import annotations

import os

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


@pytest.mark.parametrize("protocol", sorted(DEVICES))
def test_unplug_and_replug_each_only_from_the_other_state(protocol, tmp_path, closing):
    """``replug`` while plugged in stopped the emulator: its own link was refused as another emulator's."""
    link = tmp_path / "reader0"
    device = closing(DEVICES[protocol](link).start())
    path = device.path
    assert device.command("replug") == "error: replug: the reader is plugged in already"
    assert device.port.plugged and device.path == path and os.readlink(link) == path
    assert device.command("unplug") == "ok" and not device.port.plugged
    assert device.command("unplug") == "error: unplug: the reader is unplugged already"
    link.unlink()
    link.write_text("someone's file")  # the path taken while the cable was out
    answer = device.command("replug")
    assert answer.startswith(f"error: replug: --link {link}: a file is there"), answer
    assert link.read_text() == "someone's file" and not device.port.plugged
    link.unlink()
    assert device.command("replug") == f"replugged at {os.readlink(link)}" and device.port.plugged
    assert device._thread.is_alive(), "the emulator's thread survived every line"
