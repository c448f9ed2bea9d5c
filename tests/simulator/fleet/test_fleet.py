"""The fleet: deterministic plans, the same outcome whatever the process count, and nothing lost."""

from __future__ import annotations

from datetime import date

from firmware.config.catalog import load_catalog
from simulator.fleet.model import WINDOWS, plan_machine
from simulator.fleet.runner import CATALOG, run_fleet
from simulator.scenarios.reporting_world import ReportingWorld
from tests.support.waiting import eventually

DAY = date(2026, 3, 2)
PRICES = {pid: p.price for pid, p in load_catalog(CATALOG).products.items()}


def test_same_seed_same_plan_and_another_seed_another():
    first, again = plan_machine(3, DAY, 200, 7, PRICES), plan_machine(3, DAY, 200, 7, PRICES)
    assert first == again
    assert plan_machine(3, DAY, 200, 8, PRICES).visits != first.visits
    assert first.visits == sorted(first.visits, key=lambda v: (v.at, v.uid))


def test_students_arrive_in_the_school_day_windows():
    plan = plan_machine(0, DAY, 600, 1, PRICES)
    students = {c.uid for c in plan.cards if c.profile == "student"}
    times = [v.at.timetz().replace(tzinfo=None) for v in plan.visits if v.uid in students]
    assert times and all(any(start <= t <= end for _, start, end, _ in WINDOWS) for t in times)


def test_fleet_outcome_is_independent_of_processes_and_delivers_everything(tmp_path, closing):
    outcomes = []
    for processes in (1, 2):
        world = closing(ReportingWorld(tmp_path / f"world-{processes}").start())
        result = run_fleet(3, DAY, 120, 5, world.broker_access(), processes, world.keys.directory)
        vendor, issuer = world.vendor, world.issuer
        eventually(lambda: vendor.store.count() >= result.reports, what="vendor backend caught up")  # noqa: B023
        eventually(lambda: issuer.store.count() >= result.settlements, what="issuer caught up")  # noqa: B023
        assert world.vendor.store.count() == result.reports
        assert world.issuer.store.count() == result.settlements == 3
        sales = world.vendor.store.execute(
            "SELECT COUNT(*), COUNT(DISTINCT machine || txn) FROM sales WHERE outcome = 'vended'"
        )[0]
        assert sales == (result.sales, result.sales)
        outcomes.append(result.outcome())
    assert result.sales > 0 and result.denials
    assert outcomes[0] == outcomes[1]
