"""Scenario time on a machine whose zone changes its clocks (Europe/London, 2026).

`at` set the clock to a wall time in the machine's zone and a later `wait` added to that wall time, so
50 minutes from 01:30 BST on the night the clocks go back landed at 02:20 GMT, 110 minutes on; the second
01:30 of that night could not be reached at all ("time goes backwards"), and 01:30 on the night they go
forward, which no London clock shows, was taken.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from firmware.errors import VendingError
from simulator.scenarios import load_scenario, run_scenario
from tests.conftest import DEMO_MACHINE
from tests.support.stories import vend_times, write_story


def london_story(tmp_path: Path, start: str, steps: str) -> Path:
    machine = tmp_path / "london.yaml"
    config = DEMO_MACHINE.read_text().replace("timezone: Asia/Taipei", "timezone: Europe/London")
    machine.write_text(config.replace("catalog: ../", f"catalog: {DEMO_MACHINE.parent.parent}/"))
    return write_story(tmp_path / "story.yaml", steps, start, machine)


def test_a_wait_across_the_night_the_clocks_go_back_counts_real_time_and_both_01_30s_are_reached(tmp_path):
    steps = """  - at: "01:30"
  - select: A1
  - tap: lin
  - wait: 50m
  - select: A2
  - tap: lin
  - at: "01:30"
  - select: A3
  - tap: lin
"""
    state = tmp_path / "state"
    result = run_scenario(load_scenario(london_story(tmp_path, "2026-10-25T00:00:00+01:00", steps)), state)
    assert result.passed
    sold = vend_times(state)
    assert [moment - sold[0] for moment in sold] == [timedelta(0), timedelta(minutes=50), timedelta(minutes=60)]
    assert sold[0].isoformat() == "2026-10-25T01:30:00+01:00" and sold[2].utcoffset() == timedelta(0)


def test_a_time_the_clocks_skip_is_named_by_its_line(tmp_path):
    path = london_story(tmp_path, "2026-03-29T00:00:00+00:00", '  - at: "01:30"\n')
    with pytest.raises(VendingError) as refused:
        load_scenario(path)
    assert str(refused.value) == (
        f"{path}:6: steps.0.at: 01:30 is not a time on 2026-03-29 in Europe/London: the clocks go forward past it"
    )
