"""The CLI runner's hang guard: a command past it is stopped, and the failure carries what it last said."""

from __future__ import annotations

import pytest

from tests.support.commands import run_vending


def test_a_command_past_its_guard_is_interrupted_and_its_last_words_are_in_the_failure() -> None:
    with pytest.raises(AssertionError, match=r"(?s)vending fleet --machines still ran after 0s; its last words:\n"):
        run_vending(["fleet", "--machines", "2", "--students", "60", "--processes", "1"], hang_guard_s=0.3)


def test_a_command_within_its_guard_gives_its_exit_code_and_output() -> None:
    done = run_vending(["fleet", "--machines", "0"])
    assert done.returncode == 2 and "--machines" in done.stderr and done.stdout == ""
