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


def alerts(runner: ScenarioRunner) -> list[dict]:
    """The alert reports as sent (their own ``kind``: low_stock, jam, door, fault)."""
    rows = runner.machine.db.conn.execute("SELECT payload FROM outbox WHERE topic LIKE '%/alert' ORDER BY seq")
    return [json.loads(payload) for (payload,) in rows]


def visits(runner: ScenarioRunner) -> list[dict]:
    return [r for r in vendor_reports(runner) if r["kind"] in ("sale", "denial")]


def held(runner: ScenarioRunner) -> int:
    return int(runner.machine.db.conn.execute("SELECT COUNT(*) FROM held").fetchone()[0])


def held_visits(runner: ScenarioRunner) -> int:
    """Held sales and refusals (a window may also hold the stock snapshot and alerts its sales caused)."""
    sql = "SELECT COUNT(*) FROM held WHERE topic LIKE '%/sale' OR topic LIKE '%/denial'"
    return int(runner.machine.db.conn.execute(sql).fetchone()[0])


def spender_at(tmp_path: Path, minutes: int) -> ScenarioRunner:
    """A started machine with ``minutes``-long windows and a staff card that never runs dry."""
    runner = windowed_runner(tmp_path, minutes)
    runner.start()
    with runner.machine.db.atomic("journal"):
        runner.machine.books.wallet.issue(BIG_SPENDER, "staff", 100_000)
    return runner


def test_a_window_s_visits_go_out_together_shuffled_and_timed_to_the_window(tmp_path: Path, closing) -> None:
    runner = closing(spender_at(tmp_path, 15))
    controller, clock = runner.machine.controller, runner.clock
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
        assert held_visits(runner) == PER_WINDOW
        assert controller.next_deadline == start + timedelta(minutes=15), "the machine wakes at the window's end"
        clock.set(start + timedelta(minutes=15))
        controller.poll()
        assert held(runner) == 0
        released = visits(runner)[before:]
        assert sorted(r["txn"] for r in released) == sorted(sold), "every sale of the window, once"
        assert {r["time"] for r in released} == {start.astimezone(controller.config.zone).isoformat(timespec="minutes")}
        seqs = [r["seq"] for r in vendor_reports(runner)[reports_before:]]  # the window's sales and what they caused
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
    assert held_visits(runner) == 1
    runner.power_cycle()
    assert held_visits(runner) == 1, "held in the database, not in memory"
    runner.clock.advance(timedelta(minutes=30))
    runner.power_cycle()  # start-up releases what fell due while the power was off
    assert held(runner) == 0
    assert [r["kind"] for r in vendor_reports(runner)].count("sale") == 1


def test_what_a_sale_causes_goes_out_with_it_and_no_snapshot_times_a_held_sale(tmp_path: Path, closing) -> None:
    """Issue 30: low-stock and jam alerts and the stock snapshot went out at once, giving the sale's minute.

    A slot reaching its low level mid-window: the alert and the snapshot wait for the window and carry
    its start; a restock while the sale waits is held too (its snapshot already lacks the sold item),
    and of the window's snapshots only the newest, the restock's, goes out, last.
    """
    runner = closing(windowed_runner(tmp_path, 15))
    runner.start()
    controller, clock = runner.machine.controller, runner.clock
    low = controller.config.low_stock
    with runner.machine.db.atomic("journal"):
        runner.machine.books.wallet.issue(BIG_SPENDER, "staff", 100_000)
    controller.restock({"A1": low + 1})
    clock.set(clock.now().replace(minute=0, second=0) + timedelta(hours=1, minutes=7))
    start = clock.now().replace(minute=0)
    before = len(vendor_reports(runner))
    controller.select("A1")
    controller.present(CardTap(BIG_SPENDER, "virtual", clock.now()))  # A1 reaches its low level
    clock.advance(timedelta(minutes=3))
    controller.restock({"A1": 10})
    during = [r["kind"] for r in vendor_reports(runner)[before:]]
    assert "alert" not in during and "stock" not in during and "sale" not in during, during
    clock.set(start + timedelta(minutes=15))
    controller.poll()
    released = vendor_reports(runner)[before:]
    window = start.astimezone(controller.config.zone).isoformat(timespec="minutes")
    assert [(a["kind"], a["slot"], a["time"]) for a in alerts(runner)] == [("low_stock", "A1", window)]
    snapshots = [r for r in released if r["kind"] == "stock"]
    assert len(snapshots) == 1 and released[-1] is snapshots[0], "only the newest snapshot, last"
    assert snapshots[0]["slots"]["A1"]["stock"] == 10


def test_a_jam_alert_goes_out_with_its_refund_timed_to_the_window(tmp_path: Path, closing) -> None:
    runner = closing(spender_at(tmp_path, 15))
    controller, clock = runner.machine.controller, runner.clock
    clock.set(clock.now().replace(minute=0, second=0) + timedelta(hours=1, minutes=4))
    start = clock.now().replace(minute=0)
    before = len(vendor_reports(runner))
    runner.dispenser.jam("A1")  # nothing falls: refunded, and the slot reported jammed
    controller.select("A1")
    controller.present(CardTap(BIG_SPENDER, "virtual", clock.now()))
    assert [r["kind"] for r in vendor_reports(runner)[before:]] == [], "nothing at once: not the refund, not the jam"
    clock.set(start + timedelta(minutes=15))
    controller.poll()
    (sale,) = visits(runner)[-1:]
    (jam,) = alerts(runner)
    window = start.astimezone(controller.config.zone).isoformat(timespec="minutes")
    assert sale["outcome"] == "refunded" and jam["kind"] == "jam" and sale["time"] == jam["time"] == window


def test_a_slot_taken_out_of_sale_is_told_with_its_refund_alert_and_snapshot_timed_to_the_window(
    tmp_path: Path, closing
) -> None:
    runner = closing(spender_at(tmp_path, 15))
    controller, clock = runner.machine.controller, runner.clock
    clock.set(clock.now().replace(minute=0, second=0) + timedelta(hours=1, minutes=4))
    start = clock.now().replace(minute=0)
    before = len(vendor_reports(runner))
    runner.dispenser.empty("A2")  # two vends in a row that do not drop: the default jam_limit
    for _ in range(2):
        controller.select("A2")
        controller.present(CardTap(BIG_SPENDER, "virtual", clock.now()))
    assert vendor_reports(runner)[before:] == [], "nothing at once: not the refunds, the alerts or the snapshot"
    clock.set(start + timedelta(minutes=15))
    controller.poll()
    window = start.astimezone(controller.config.zone).isoformat(timespec="minutes")
    out = [alert for alert in alerts(runner) if "detail" in alert]
    assert [(a["kind"], a["slot"], a["time"]) for a in out] == [("jam", "A2", window)]
    assert "enable_slot A2" in out[0]["detail"]
    snapshot = [r for r in vendor_reports(runner) if r["kind"] == "stock"][-1]
    assert snapshot["time"] == window and snapshot["slots"]["A2"]["enabled"] is False


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


def test_a_run_that_ends_mid_window_closes_its_day_with_every_sale_sent(world: ReportingWorld, tmp_path: Path) -> None:
    """Issue 30: the day's summary counted five sales while the last window's sale stayed held for ever."""
    from simulator.scenarios import run_scenario

    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")
    config = scenario.machine.config.model_copy(update={"release_minutes": 15})
    scenario = replace(scenario, machine=replace(scenario.machine, config=config))
    result = run_scenario(scenario, tmp_path / "machine", attach=world)
    assert result.passed and result.sales > 0
    assert (result.held, result.next_release) == (0, None)
    assert world.vendor is not None and world.vendor.store.count("sale") == result.sales + result.refunds
    (summary,) = [
        json.loads(p) for (p,) in world.vendor.store.execute("SELECT payload FROM reports WHERE kind = 'summary'")
    ]
    assert summary["sales"] == world.vendor.store.count("sale") - result.refunds, "the summary counts what was sent"
