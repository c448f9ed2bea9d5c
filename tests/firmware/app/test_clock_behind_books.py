"""A wall clock stepped back never puts a sale before what the books hold, nor on a day already closed.

An RTC reset, NTP correcting a clock that ran fast, or a technician setting the time: within
``CLOCK_SKEW`` the books' time stands still until the wall clock catches up; further back, the
machine is out of order (and tells the vendor) until it does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from firmware.app.node import CLOCK_FAULT
from firmware.clock import CLOCK_SKEW, BooksClock
from firmware.controller.machine import State
from firmware.domain import CardTap
from simulator.scenarios.runner import ScenarioRunner
from simulator.scenarios.schema import load_scenario
from tests.conftest import CONFIGS
from tests.support.reporting import sell

MORNING = CONFIGS / "scenarios" / "normal-morning.yaml"  # starts on Monday 2 March 2026, Taipei
MIDNIGHT = datetime.fromisoformat("2026-03-03T00:00:00+08:00")


def vends(runner: ScenarioRunner) -> list[tuple[str, str]]:
    """Each vend's local day and stamp, in the order sold."""
    rows = runner.machine.db.conn.execute("SELECT local_day, at FROM vends ORDER BY rowid").fetchall()
    return [(str(day), str(at)) for day, at in rows]


def closed_days(runner: ScenarioRunner) -> list[str]:
    rows = runner.machine.db.conn.execute(
        "SELECT json_extract(data, '$.day') FROM journal WHERE kind = 'day_closed' ORDER BY id"
    ).fetchall()
    return [str(day) for (day,) in rows]


def faults(runner: ScenarioRunner) -> list[str]:
    rows = runner.machine.db.conn.execute(
        "SELECT json_extract(data, '$.detail') FROM journal WHERE kind = 'fault' ORDER BY id"
    ).fetchall()
    return [str(detail) for (detail,) in rows]


def tap(runner: ScenarioRunner, slot: str, card: str) -> None:
    controller = runner.machine.controller
    controller.dispatch("select", slot)
    controller.present(CardTap(runner.scenario.cards[card].uid, "virtual", runner.clock.now()))


@pytest.fixture
def runner(tmp_path, closing) -> ScenarioRunner:
    started = closing(ScenarioRunner(load_scenario(MORNING), tmp_path / "machine"))
    started.start()
    return started


def test_books_time_stands_still_while_the_wall_clock_is_behind_and_moves_on_after() -> None:
    wall = [datetime.fromisoformat("2026-03-02T10:00:00+08:00")]
    clock = BooksClock(lambda: wall[0], floor=datetime.fromisoformat("2026-03-02T10:03:00+08:00"))
    assert clock.now() == datetime.fromisoformat("2026-03-02T10:03:00+08:00")
    assert clock.behind() == timedelta(minutes=3)
    wall[0] += timedelta(minutes=4)
    assert clock.now() == wall[0] and clock.behind() == timedelta(0)
    wall[0] -= timedelta(seconds=30)  # stepped back again: the time handed out is the new floor
    assert clock.now() == wall[0] + timedelta(seconds=30)
    assert BooksClock(lambda: wall[0]).behind() == timedelta(0), "empty books hold no time"


def test_a_step_back_across_midnight_after_the_close_puts_the_sale_on_the_open_day(runner) -> None:
    sell(runner, "A1", "amy")  # Monday
    runner.clock.set(MIDNIGHT + timedelta(minutes=1))
    runner.machine.tick()
    assert closed_days(runner) == ["2026-03-02"]

    runner.clock.reset(MIDNIGHT - timedelta(minutes=2))  # NTP: the clock had run three minutes fast
    runner.machine.tick()
    assert runner.machine.controller.state is State.IDLE, "within the skew the machine keeps selling"
    tap(runner, "A1", "lin")
    day, at = vends(runner)[-1]
    assert day == "2026-03-03", "never on Monday, which the issuer has settled already"
    assert datetime.fromisoformat(at) == MIDNIGHT + timedelta(minutes=1), "stamped at the books' time"

    runner.clock.set(MIDNIGHT + timedelta(days=1, minutes=1))
    runner.machine.tick()
    assert closed_days(runner) == ["2026-03-02", "2026-03-03"], "the sale's day is closed and settled"


def test_a_clock_further_behind_than_the_skew_stops_sales_until_it_catches_up(runner) -> None:
    sell(runner, "A1", "amy")
    runner.machine.tick()  # the machine has seen this time: its books stay at it or after
    latest = runner.clock.now()
    runner.clock.reset(latest - CLOCK_SKEW - timedelta(seconds=1))
    runner.machine.tick()
    assert runner.machine.controller.state is State.OUT_OF_ORDER
    assert faults(runner) == [CLOCK_FAULT], "journaled once: the vendor gets a fault alert"
    assert runner.display.text().startswith("故障"), runner.display.text()

    sold = len(vends(runner))
    tap(runner, "A1", "lin")
    runner.machine.tick()
    assert len(vends(runner)) == sold, "no sale while the clock is behind"
    assert faults(runner) == [CLOCK_FAULT]

    runner.clock.reset(latest)  # the time is set right
    runner.machine.tick()
    assert runner.machine.controller.state is State.IDLE
    tap(runner, "A1", "lin")
    assert len(vends(runner)) == sold + 1
    assert datetime.fromisoformat(vends(runner)[-1][1]) >= latest


def test_a_machine_that_boots_with_its_clock_behind_its_books_starts_out_of_order(runner) -> None:
    sell(runner, "A1", "amy")
    runner.clock.reset(datetime.fromisoformat("2000-01-01T00:00:00+08:00"))  # the RTC's battery died
    runner.power_cycle()
    assert runner.machine.controller.state is State.OUT_OF_ORDER
    assert faults(runner) == [CLOCK_FAULT]
    runner.machine.tick()
    assert faults(runner) == [CLOCK_FAULT], "said once, not at every tick"


def test_with_the_door_open_the_clock_fault_waits_for_the_door_to_close(runner) -> None:
    runner.door.open = True
    runner.machine.controller.dispatch("door_open")
    runner.clock.reset(runner.clock.now() - timedelta(hours=1))
    runner.machine.tick()
    assert runner.machine.controller.state is State.SERVICE, "the technician keeps the machine"
    runner.door.open = False
    runner.machine.controller.dispatch("door_close")
    assert runner.machine.controller.state is State.OUT_OF_ORDER, "closing the door finds the clock behind"
