"""Scenario steps that fire the machine's triggers (`select`, `cancel`, `door`, `fault`, `recover`).

A trigger the machine's state does not take is the story's mistake, named by its line (`vending run`
exits 2); before, it ended in "internal error ... please report" (exit 70). What the hardware may
really send twice -- a second fault, a door that closes again -- is taken, not refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.errors import InputError
from simulator.scenarios import load_scenario, run_scenario
from tests.conftest import DEMO_MACHINE

HEAD = f"""machine: {DEMO_MACHINE}
start: "2026-03-02T09:40:00+08:00"
cards:
  amy: {{uid: "04A1B2C3D4E5F6", profile: student, balance: 200}}
steps:
"""


def story(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "story.yaml"
    path.write_text(HEAD + steps)
    return path


def test_recover_with_nothing_out_of_order_is_named_by_its_line(tmp_path):
    path = story(tmp_path, "  - select: A1\n  - recover: true\n")
    with pytest.raises(InputError) as raised:
        run_scenario(load_scenario(path))
    assert str(raised.value) == f"{path}:7: steps.1.recover: the machine does not take this in state awaiting_card"


def test_a_second_fault_and_a_door_closed_twice_are_taken(tmp_path):
    steps = """  - fault: motor board
  - fault: coin mech
  - expect: {state: out_of_order, display: "coin mech"}
  - door: open
  - door: close
  - door: close
  - expect: {state: out_of_order}
  - recover: true
  - select: A1
  - tap: amy
  - expect: {outcome: vended}
"""
    result = run_scenario(load_scenario(story(tmp_path, steps)))
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]
