"""A `wait` in days: the README promised waits of up to 366 days, and `wait: 7d` was refused as no duration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from firmware.errors import VendingError
from simulator.scenarios import load_scenario, run_scenario
from tests.support.stories import vend_times, write_story


def story(tmp_path: Path, wait: str) -> Path:
    steps = f"  - select: A1\n  - tap: lin\n  - wait: {wait}\n  - select: A1\n  - tap: lin\n"
    return write_story(tmp_path / "story.yaml", steps, "2026-03-02T09:00:00+08:00")


@pytest.mark.parametrize(("wait", "elapsed"), [("7d", timedelta(days=7)), ("1d12h", timedelta(hours=36))])
def test_a_wait_in_days_moves_the_machine_s_time_that_far(tmp_path: Path, wait: str, elapsed: timedelta) -> None:
    state = tmp_path / "state"
    assert run_scenario(load_scenario(story(tmp_path, wait)), state).passed
    first, second = vend_times(state)
    assert second - first == elapsed


def test_a_wait_past_a_school_year_in_days_is_refused_by_its_line(tmp_path: Path) -> None:
    path = story(tmp_path, "367d")
    with pytest.raises(VendingError) as refused:
        load_scenario(path)
    assert str(refused.value) == f"{path}:8: steps.2.wait: a wait is at most 366 days (a school year), got '367d'"
