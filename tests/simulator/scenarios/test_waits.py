"""A `wait` in days: the README promised waits of up to 366 days, and `wait: 7d` was refused as no duration."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from firmware.errors import VendingError
from simulator.scenarios import load_scenario, run_scenario
from tests.conftest import DEMO_MACHINE


def story(tmp_path: Path, wait: str) -> Path:
    path = tmp_path / "story.yaml"
    path.write_text(f"""machine: {DEMO_MACHINE}
start: "2026-03-02T09:00:00+08:00"
cards:
  lin: {{uid: "0499887766AA01", profile: staff, balance: 300}}
steps:
  - select: A1
  - tap: lin
  - wait: {wait}
  - select: A1
  - tap: lin
""")
    return path


@pytest.mark.parametrize(("wait", "elapsed"), [("7d", timedelta(days=7)), ("1d12h", timedelta(hours=36))])
def test_a_wait_in_days_moves_the_machine_s_time_that_far(tmp_path: Path, wait: str, elapsed: timedelta) -> None:
    state = tmp_path / "state"
    assert run_scenario(load_scenario(story(tmp_path, wait)), state).passed
    with sqlite3.connect(state / "machine.db") as conn:
        first, second = (datetime.fromisoformat(at) for (at,) in conn.execute("SELECT at FROM vends ORDER BY rowid"))
    assert second - first == elapsed


def test_a_wait_past_a_school_year_in_days_is_refused_by_its_line(tmp_path: Path) -> None:
    path = story(tmp_path, "367d")
    with pytest.raises(VendingError) as refused:
        load_scenario(path)
    assert str(refused.value) == f"{path}:8: steps.2.wait: a wait is at most 366 days (a school year), got '367d'"
