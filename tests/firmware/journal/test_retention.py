"""Retention on the machine: card numbers go once their day is settled, acknowledged and old enough."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from firmware.journal.outbox import Outbox
from simulator.scenarios import load_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import sell


def card_numbers_by_day(runner: ScenarioRunner) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for day, uid in runner.machine.db.conn.execute("SELECT local_day, uid FROM vends"):
        found.setdefault(day, set()).add(uid)
    return found


def test_card_numbers_are_forgotten_only_after_the_issuer_acknowledged_the_day(tmp_path: Path, closing) -> None:
    world = ReportingWorld(tmp_path / "world")  # its keys only: the settlement stays in the outbox until acked
    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")
    runner = closing(
        ScenarioRunner(scenario, tmp_path / "machine", link=world.machine_link(scenario.machine.config.id))
    )
    runner.start()
    controller, books = runner.machine.controller, runner.machine.books
    assert controller.config.retention.card_days == 7
    amy = scenario.cards["amy"].uid

    def trade_and_close() -> str:
        sell(runner, "A1", "amy")
        day = controller.now().astimezone(controller.config.zone).date().isoformat()
        controller.close_day(day)
        return day

    first = trade_and_close()
    money = books.invariant_total()
    runner.clock.advance(timedelta(days=8))
    second = trade_and_close()
    assert card_numbers_by_day(runner) == {first: {amy}, second: {amy}}, "the settlement is not acknowledged yet"

    Outbox(runner.machine.db.conn).delete_acked({"issuer": 10**6})  # the issuer's ack, as the publisher applies it
    runner.clock.advance(timedelta(days=1))
    third = trade_and_close()
    found = card_numbers_by_day(runner)
    assert found[first] == {""}, "day one: settled, acked, more than 7 days old"
    assert found[second] == {amy} and found[third] == {amy}, "days two and three are too recent"
    kept = books.db.conn.execute("SELECT product, price, status FROM vends WHERE local_day = ?", (first,)).fetchall()
    assert kept == [("milk-lowfat-290", 25, "completed")], "the sale itself stays: only the card number goes"
    assert books.invariant_total() == money, "forgetting a card number moves no money"
