"""A machine left running closes its trading days by itself: at local midnight, and at start-up after a power cut."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from simulator.hardware.virtual import advance
from simulator.scenarios.runner import ScenarioRunner
from simulator.scenarios.schema import load_scenario
from tests.conftest import CONFIGS
from tests.support.reporting import sell

MORNING = CONFIGS / "scenarios" / "normal-morning.yaml"
ZONE = ZoneInfo("Asia/Taipei")


def closed_days(runner: ScenarioRunner) -> list[str]:
    rows = runner.machine.books.journal.db.conn.execute(
        "SELECT json_extract(data, '$.day') FROM journal WHERE kind = 'day_closed' ORDER BY rowid"
    ).fetchall()
    return [str(day) for (day,) in rows]


def test_the_day_closes_at_local_midnight_once(tmp_path, closing):
    runner = closing(ScenarioRunner(load_scenario(MORNING), tmp_path / "machine"))
    runner.start()
    machine = runner.machine  # the loop runs its tick between events
    sell(runner, "A1", "amy")
    machine.tick()
    assert closed_days(runner) == [], "the day is still trading"

    runner.clock.set(runner.clock.now().replace(hour=23, minute=59, second=59))  # Taipei time
    machine.tick()
    assert closed_days(runner) == []
    runner.clock.advance(timedelta(seconds=2))  # 00:00:01 local, 16:00 UTC
    machine.tick()
    machine.tick()
    assert closed_days(runner) == ["2026-03-02"], "closed once, at local midnight"


def test_a_wait_past_midnight_on_virtual_time_closes_the_day_at_midnight(tmp_path, closing):
    """As a machine left running would: not at the first event after the jump, ten hours late."""
    runner = closing(ScenarioRunner(load_scenario(MORNING), tmp_path / "machine"))
    runner.start()
    sell(runner, "A1", "amy")
    late = runner.clock.now().replace(hour=23, minute=58)
    advance(runner.machine, runner.clock, late)
    advance(runner.machine, runner.clock, late + timedelta(hours=10))  # a `wait: 10h` step
    rows = runner.machine.books.journal.db.conn.execute("SELECT at FROM journal WHERE kind = 'day_closed'").fetchall()
    assert [datetime.fromisoformat(at).astimezone(ZONE).isoformat() for (at,) in rows] == ["2026-03-03T00:00:00+08:00"]


def test_start_up_closes_the_days_a_power_cut_left_open_and_not_today(tmp_path, closing):
    runner = closing(ScenarioRunner(load_scenario(MORNING), tmp_path / "machine"))
    runner.start()
    sell(runner, "A1", "amy")  # Monday 2 March
    runner.clock.set(runner.clock.now() + timedelta(days=1))
    sell(runner, "A1", "lin")  # Tuesday
    runner.clock.set(runner.clock.now() + timedelta(days=2))  # power back on Thursday morning
    runner.power_cycle()
    sell(runner, "A1", "lin")
    runner.machine.tick()
    assert closed_days(runner) == ["2026-03-02", "2026-03-03"]

    runner.power_cycle()
    runner.machine.tick()
    assert closed_days(runner) == ["2026-03-02", "2026-03-03"], "a closed day is never closed twice"
