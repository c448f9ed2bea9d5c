"""One running machine per state dir: the second is refused before it touches the books."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from firmware.app.state_lock import StateDirInUse
from tests.conftest import CONFIGS, VENDING


def test_a_second_machine_on_held_books_is_refused_until_the_first_closes_or_loses_power(tmp_path: Path) -> None:
    from bench.common import open_demo

    state = tmp_path / "machine"
    first, _, _ = open_demo(state)
    before = (state / "machine.db").read_bytes()
    with pytest.raises(StateDirInUse, match="another running machine has these books"):
        open_demo(state)
    assert (state / "machine.db").read_bytes() == before, "the refused machine wrote nothing"
    first.close()
    second, _, _ = open_demo(state)  # a clean stop lets the books go
    second.power_loss()
    third, _, _ = open_demo(state)  # and so does a power cut, as the end of a process does
    third.close()


def test_vending_serve_twice_on_one_state_dir_names_the_running_one(tmp_path: Path) -> None:
    """Two terminals, the same (default) state dir: the second sells nothing from the first's wallet."""
    state = tmp_path / "state"
    assert subprocess.run([VENDING, "keys", "init", "--state-dir", str(state), "--valid-until", "2099-01-31"],
                          capture_output=True).returncode == 0  # fmt: skip
    serve = [VENDING, "serve", "--machine", str(CONFIGS / "machines/demo.yaml"), "--reader", "virtual:",
             "--state-dir", str(state)]  # fmt: skip
    first = subprocess.Popen(serve, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        assert "power_on" in first.stdout.readline(), "the first machine is up"
        second = subprocess.run(serve, input="quit\n", capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"{state}: another running machine has these books (pid {first.pid})" in second.stderr
    finally:
        first.communicate("quit\n", timeout=30)
    assert first.returncode == 0
    again = subprocess.run(serve, input="quit\n", capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr  # the first one's stop let the books go
