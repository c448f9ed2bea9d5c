"""``vending reader emulate --link PATH``: the link is made only where nothing is, and only its own is removed.

It replaced whatever stood at PATH by the link and removed the link when it stopped: given an existing
file (``--link /etc/passwd``, as root, by a slip) the file was gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import date

import pytest

from firmware.cards.purse import CardRecord, Sam, issue_image
from firmware.errors import VendingError
from simulator.emulators.pty_port import PtyPort
from tests.conftest import VENDING


def test_a_file_or_a_foreign_link_at_the_link_path_is_refused_and_kept(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    pointing = tmp_path / "pointing"
    pointing.symlink_to(precious)
    for link, reason in ((precious, "a file is there"), (pointing, "not to a pseudo-terminal")):
        out = subprocess.run([VENDING, "reader", "emulate", "--protocol", "pn532", "--link", str(link)],
                             input="quit\n", capture_output=True, text=True, timeout=30)  # fmt: skip
        assert out.returncode == 2 and f"--link {link}: " in out.stderr and reason in out.stderr, out.stderr
    assert precious.read_text() == "keep me" and os.readlink(pointing) == str(precious)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pointing", "precious.txt"], "no leftovers"
    with pytest.raises(VendingError, match="a file is there"):
        PtyPort(precious)


def test_a_link_an_emulator_left_is_taken_over_and_only_the_emulator_s_own_link_is_removed(tmp_path, closing):
    left = tmp_path / "reader0"
    left.symlink_to("/dev/pts/999")  # a killed emulator's
    port = closing(PtyPort(left))
    assert os.readlink(left) == port.path
    port.close()
    assert not left.is_symlink()
    again = PtyPort(left)
    left.unlink()
    left.symlink_to("/dev/pts/998")  # somebody pointed it elsewhere meanwhile: theirs now
    again.close()
    assert os.readlink(left) == "/dev/pts/998"


def test_the_link_of_an_emulator_still_running_is_refused_and_stays_its_own(tmp_path, closing):
    """A second emulator on the same --link took the path from the first (still running, its machine reading
    it), and removed it when it stopped: the first emulator was left with no path at all."""
    link = tmp_path / "reader0"
    first = closing(PtyPort(link))
    with pytest.raises(VendingError, match=rf"--link {link}: the link of {first.path}, a pseudo-terminal still open"):
        PtyPort(link)
    assert os.readlink(link) == first.path
    out = subprocess.run([VENDING, "reader", "emulate", "--protocol", "pn532", "--link", str(link)],
                         input="quit\n", capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 2 and "another emulator's" in out.stderr, out.stderr
    assert os.readlink(link) == first.path, "the first emulator keeps its path"
    first.close()
    second = closing(PtyPort(link))  # gone with its emulator: taken over
    assert os.readlink(link) == second.path


@pytest.mark.parametrize(
    "options,reason",
    [
        (["--protocol", "pn532", "--script", "/no/such/script"], "--script /no/such/script: cannot read"),
        (["--protocol", "pn532", "--cards", "/no/such/dir"], "--cards /no/such/dir: no such directory"),
        (["--protocol", "line", "--cards", "."], "card images are MIFARE cards, for --protocol pn532 only (not line)"),
    ],
)
def test_the_emulator_s_options_are_checked_before_a_device_starts(options, reason):
    """A missing script started the device and then failed on a bare errno; a missing --cards said 'pn532 only'."""
    out = subprocess.run([VENDING, "reader", "emulate", *options], input="", capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and reason in out.stderr and "reader on" not in out.stdout, out.stderr + out.stdout


def test_a_bad_control_line_is_answered_and_the_emulator_goes_on(tmp_path):
    """``sleep 1e300`` stopped the emulator (OverflowError, exit 70); a card image whose block 0 is junk was
    placed ("ok") and stopped it when the card left; another card's image was written back over that card's file."""
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "04A1B2C3.mfd").write_bytes(bytes(1024))
    record = CardRecord("student", "353301", date(2026, 3, 2))
    theirs = issue_image(bytes.fromhex("04A1B2C4"), record, 5, Sam(bytes(32)))
    (cards / "04A1B2C4.mfd").write_bytes(theirs)
    (cards / "04A1B2C5.mfd").write_bytes(theirs)  # a copy of 04A1B2C4's card under another name
    lines = ["sleep 1e300", "sleep nan", "sleep -1", "place 04A1B2C3", "place 04A1B2C5", "remove", "place 04A1B2C4"]
    out = subprocess.run([VENDING, "reader", "emulate", "--protocol", "pn532", "--cards", str(cards)],
                         input="\n".join([*lines, "remove", "quit"]) + "\n", capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    answers = out.stdout.splitlines()[1:]
    assert answers[:3] == [f"error: sleep takes 0 to 86400 seconds, got {arg!r}" for arg in ("1e300", "nan", "-1")]
    assert answers[3].startswith(f"error: place 04A1B2C3: {cards / '04A1B2C3.mfd'}: block 0 is neither")
    copied = f"{cards / '04A1B2C5.mfd'}: the image is card 04A1B2C4's, not 04A1B2C5's"
    assert answers[4] == f"error: place 04A1B2C5: {copied}"
    assert answers[5:] == ["ok", "ok", "ok"]
    assert (cards / "04A1B2C4.mfd").read_bytes() == theirs and (cards / "04A1B2C3.mfd").read_bytes() == bytes(1024)


@pytest.mark.parametrize("control", ["stdin", "script"])
def test_a_terminated_emulator_removes_its_link(tmp_path, control):
    """SIGTERM killed the emulator where it stood, its link left on a pseudo-terminal number the box gives
    the next terminal opened; a machine given the link would have opened that terminal as its reader."""
    link = tmp_path / "reader0"
    script = tmp_path / "control.txt"
    script.write_text("sleep 600\n")
    extra = ["--script", str(script)] if control == "script" else []
    command = [VENDING, "reader", "emulate", "--protocol", "line", "--link", str(link), *extra]
    pipe = subprocess.PIPE
    emulator = subprocess.Popen(command, stdin=pipe, stdout=pipe, stderr=pipe, text=True)
    try:
        assert emulator.stdout is not None
        assert emulator.stdout.readline().startswith("line reader on /dev/pts/")
        assert os.readlink(link).startswith("/dev/pts/")
        emulator.send_signal(signal.SIGTERM)
        _, err = emulator.communicate(timeout=30)
    finally:
        emulator.kill()
    assert emulator.returncode == 0, err
    assert not link.is_symlink(), "the link stayed behind"
