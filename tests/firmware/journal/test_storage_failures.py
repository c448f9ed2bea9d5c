"""Disk full and a read-only state dir: a clear error, sales stop, the journal stays intact, and it recovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.domain import CardTap
from simulator.scenarios import load_scenario
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT

MORNING = ROOT / "configs/scenarios/normal-morning.yaml"


def make_runner(tmp_path: Path) -> ScenarioRunner:
    runner = ScenarioRunner(load_scenario(MORNING), tmp_path / "machine")
    runner.start()
    return runner


def try_sale(runner: ScenarioRunner, slot: str = "E1", card: str = "lin") -> None:
    controller = runner.machine.controller
    controller.dispatch("select", slot)
    controller.present(CardTap(runner.scenario.cards[card].uid, "virtual", runner.clock.now()))


def disk_full(runner: ScenarioRunner) -> None:
    conn = runner.machine.db.conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow by a single page


def read_only(runner: ScenarioRunner) -> None:
    runner.machine.db.conn.execute("PRAGMA query_only = ON")  # what a read-only remount looks like to SQLite


def restore(runner: ScenarioRunner) -> None:
    conn = runner.machine.db.conn
    conn.execute("PRAGMA query_only = OFF")
    conn.execute("PRAGMA max_page_count = 1073741823")


@pytest.mark.parametrize("breakage", [disk_full, read_only], ids=["disk-full", "read-only"])
def test_storage_failure_stops_sales_without_losing_money(tmp_path, breakage, closing):
    runner = closing(make_runner(tmp_path))
    controller = runner.machine.controller
    start_total = runner.machine.invariant_total()
    breakage(runner)
    for _ in range(300):  # sales go on until a write no longer fits
        try_sale(runner)
        if controller.state.value == "out_of_order":
            break
    assert controller.state.value == "out_of_order"
    assert controller.storage_error and ("full" in controller.storage_error or "readonly" in controller.storage_error)
    assert "Out of order" in runner.display.text()
    sold_before_failure = runner.result.sales
    balance = runner.machine.books.wallet.balance(runner.scenario.cards["lin"].uid)

    try_sale(runner)  # refused while storage is broken: no debit, no motor
    assert controller.state.value == "out_of_order"
    assert runner.machine.books.wallet.balance(runner.scenario.cards["lin"].uid) == balance
    assert runner.machine.invariant_total() == start_total

    assert controller.recheck_storage() is False
    restore(runner)
    assert controller.recheck_storage() is True
    controller.dispatch("recover")
    assert controller.state.value == "idle"
    assert runner.machine.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    runner.power_cycle()  # whatever the failed write left half-done is settled by recovery
    books = runner.machine.books
    assert books.vends.in_flight() == 0
    assert runner.machine.invariant_total() == start_total
    # a vend whose drop could not be journaled had fallen into the tray: recovery completes it
    assert sum(books.vends.confirmed_drops().values()) == len(runner.dispenser.dispensed)
    assert runner.result.sales >= sold_before_failure
    try_sale(runner)
    assert controller is not runner.machine.controller
    assert runner.machine.controller.last_transaction.outcome == "vended"


def test_unwritable_state_dir_is_a_clear_error(tmp_path):
    from firmware.errors import StorageError
    from firmware.journal.database import Database

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state dir should be")
    with pytest.raises(StorageError, match="cannot open the machine's state database"):
        Database(blocker / "machine.db")
