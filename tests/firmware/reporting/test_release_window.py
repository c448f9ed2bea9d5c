"""Sales and denials reach the vendor per release window: held, then shuffled, numbered and timed to the window."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from firmware.domain import CardTap
from simulator.scenarios import load_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import sell

BIG_SPENDER = "04FEEDFACE0001"
WINDOWS = 8
PER_WINDOW = 3


def windowed_runner(tmp_path: Path, minutes: int) -> ScenarioRunner:
    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")
    config = scenario.machine.config.model_copy(update={"release_minutes": minutes})
    scenario = replace(scenario, machine=replace(scenario.machine, config=config))
    world = ReportingWorld(tmp_path / "world")  # its keys only: reports stay in the outbox to be read
    return ScenarioRunner(scenario, tmp_path / "machine", link=world.machine_link(scenario.machine.config.id))


def vendor_reports(runner: ScenarioRunner) -> list[dict]:
    rows = runner.machine.db.conn.execute(
        "SELECT topic, payload FROM outbox WHERE stream = 'vendor' ORDER BY seq"
    ).fetchall()
    return [json.loads(payload) | {"kind": topic.rsplit("/", 1)[-1]} for topic, payload in rows]


def visits(runner: ScenarioRunner) -> list[dict]:
    return [r for r in vendor_reports(runner) if r["kind"] in ("sale", "denial")]


def held(runner: ScenarioRunner) -> int:
    return int(runner.machine.db.conn.execute("SELECT COUNT(*) FROM held").fetchone()[0])


def test_a_window_s_visits_go_out_together_shuffled_and_timed_to_the_window(tmp_path: Path, closing) -> None:
    runner = closing(windowed_runner(tmp_path, 15))
    runner.start()
    controller, clock = runner.machine.controller, runner.clock
    with runner.machine.db.atomic("journal"):
        runner.machine.books.wallet.issue(BIG_SPENDER, "staff", 100_000)
    clock.set(clock.now().replace(minute=0, second=0) + timedelta(hours=1))  # a window's start
    in_sale_order: list[list[str]] = []
    out_of_order = 0
    for _ in range(WINDOWS):
        start = clock.now()
        before, reports_before = len(visits(runner)), len(vendor_reports(runner))
        for slot in ("E1", "E2", "A1")[:PER_WINDOW]:
            controller.select(slot)
            controller.present(CardTap(BIG_SPENDER, "virtual", clock.now()))
            clock.advance(timedelta(minutes=2))
        sold = [
            txn
            for (txn,) in runner.machine.db.conn.execute(
                "SELECT txn_id FROM journal WHERE kind = 'vend_completed' ORDER BY id"
            ).fetchall()[-PER_WINDOW:]
        ]
        assert len(visits(runner)) == before, "no sale reaches the vendor inside the window"
        assert held(runner) == PER_WINDOW
        assert controller.next_deadline == start + timedelta(minutes=15), "the machine wakes at the window's end"
        clock.set(start + timedelta(minutes=15))
        controller.poll()
        assert held(runner) == 0
        released = visits(runner)[before:]
        assert sorted(r["txn"] for r in released) == sorted(sold), "every sale of the window, once"
        assert {r["time"] for r in released} == {start.astimezone(controller.config.zone).isoformat(timespec="minutes")}
        seqs = [r["seq"] for r in vendor_reports(runner)[reports_before:] if r["kind"] == "sale"]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "numbered at release, without gaps"
        in_sale_order.append([r["txn"] for r in released])
        out_of_order += [r["txn"] for r in released] != sold
    assert out_of_order > 0, f"{WINDOWS} windows all released in sale order: not shuffled"
    txns = [txn for window in in_sale_order for txn in window]
    assert txns != sorted(txns) and len(set(t.split("-")[-1] for t in txns)) == len(txns), "txn ids tell no order"


def test_held_visits_survive_a_power_cut_and_go_out_when_the_machine_is_back(tmp_path: Path, closing) -> None:
    runner = closing(windowed_runner(tmp_path, 15))
    runner.start()
    sell(runner, "A1", "amy")
    assert held(runner) == 1
    runner.power_cycle()
    assert held(runner) == 1, "held in the database, not in memory"
    runner.clock.advance(timedelta(minutes=30))
    runner.power_cycle()  # start-up releases what fell due while the power was off
    assert held(runner) == 0
    assert [r["kind"] for r in vendor_reports(runner)].count("sale") == 1


def test_zero_minutes_sends_each_visit_at_once(tmp_path: Path, closing) -> None:
    runner = closing(windowed_runner(tmp_path, 0))
    runner.start()
    sell(runner, "A1", "amy")
    assert held(runner) == 0 and [r["kind"] for r in vendor_reports(runner)].count("sale") == 1


def test_the_low_stock_snapshot_and_alert_come_once_at_the_level_and_once_at_empty(tmp_path: Path, closing) -> None:
    runner = closing(windowed_runner(tmp_path, 0))
    runner.start()
    low = runner.machine.controller.config.low_stock
    controller = runner.machine.controller
    with runner.machine.db.atomic("journal"):
        runner.machine.books.wallet.issue(BIG_SPENDER, "staff", 100_000)
    controller.restock({"A1": low + 3})
    before = len(vendor_reports(runner))
    for _ in range(low + 3):  # from low + 3 down to empty, one sale at a time
        controller.select("A1")
        controller.present(CardTap(BIG_SPENDER, "virtual", runner.clock.now()))
        runner.clock.advance(timedelta(minutes=1))
    reports = vendor_reports(runner)[before:]
    assert [r["kind"] for r in reports].count("sale") == low + 3
    alerts = [r["stock"] for r in reports if r["kind"] == "alert" and r.get("slot") == "A1"]
    assert alerts == [low, 0], "an alert on every sale below the level is noise, and none at empty is a miss"
    snapshots = [r["slots"]["A1"]["stock"] for r in reports if r["kind"] == "stock"]
    assert snapshots == [low, 0]
