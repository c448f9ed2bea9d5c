"""settlement: per_card sends each card's total per four-week settlement period, never per day (docs/privacy.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

from firmware.reporting.sealed import open_settlement
from simulator.backends.issuer import IssuerBackend
from simulator.scenarios import load_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import sell


def per_card_runner(tmp_path: Path, world: ReportingWorld) -> ScenarioRunner:
    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")  # starts on a Monday
    setup = scenario.machine
    config = setup.config.model_copy(update={"settlement": "per_card"})
    scenario = replace(scenario, machine=replace(setup, config=config))
    return ScenarioRunner(scenario, tmp_path / "machine", link=world.machine_link(scenario.machine.config.id))


def settlements(runner: ScenarioRunner, world: ReportingWorld) -> list[tuple[dict, dict]]:
    """(outer payload, opened document) of every settlement in the outbox, in seq order."""
    rows = runner.machine.db.conn.execute("SELECT payload FROM outbox WHERE stream = 'issuer' ORDER BY seq").fetchall()
    found = []
    for (raw,) in rows:
        payload = json.loads(raw)
        verify = partial(world.keys.enrolment.verify, payload["machine"])
        found.append((payload, open_settlement(payload["sealed"], world.keys.seal_private, verify)))
    return found


def test_per_card_lines_cover_a_whole_period_and_no_day_names_a_card(tmp_path: Path, closing) -> None:
    world = ReportingWorld(tmp_path / "world")
    runner = closing(per_card_runner(tmp_path, world))
    runner.start()
    controller = runner.machine.controller
    uids = {name: card.uid for name, card in runner.scenario.cards.items()}

    def trade_and_close(*buyers: str) -> str:
        for buyer in buyers:
            sell(runner, "A1", buyer)
        day = controller.now().astimezone(controller.config.zone).date().isoformat()
        controller.close_day(day)
        runner.clock.advance(timedelta(days=1))
        return day

    monday = trade_and_close("amy", "ben")  # 2026-03-02, ISO week 10: the period of weeks 9-12
    tuesday = trade_and_close("amy")
    runner.clock.advance(timedelta(days=5))  # the next Monday: week 11, the same period
    same_period = trade_and_close("amy")
    runner.clock.advance(timedelta(days=13))  # Monday of week 13: a new period
    next_period = trade_and_close("ben")
    documents = [document for _, document in settlements(runner, world)]
    days = [d for d in documents if "day" in d]
    weeks = [d for d in documents if "week" in d]
    assert [d["day"] for d in days] == [monday, tuesday, same_period, next_period]
    assert all("cards" not in d for d in days), "a day document names no card under per_card"
    assert [(d["amount"], d["count"]) for d in days] == [(50, 2), (25, 1), (25, 1), (25, 1)]
    assert len(weeks) == 1, "the period is settled at the first close of the next period, once"
    (week,) = weeks
    assert week["days"] == [monday, tuesday, same_period] and week["week"] == "2026-W09"
    lines = {card["uid"]: (card["amount"], card["count"]) for card in week["cards"]}
    assert lines == {uids["amy"]: (75, 3), uids["ben"]: (25, 1)}

    issuer = IssuerBackend(
        _no_broker(),
        tmp_path / "issuer.db",
        world.keys.seal_private,
        world.keys.issuer,
        world.keys.enrolment,
    )
    try:
        for payload, _ in settlements(runner, world):
            report = issuer.report(payload["machine"], "settlement", payload)
            assert report is not None
            issuer.store.store_many([report])
        stored = issuer.store.execute("SELECT week, days, uid, amount, count FROM settlement_weeks ORDER BY uid")
        assert stored == sorted(
            [
                ("2026-W09", f"{monday},{tuesday},{same_period}", uids["amy"], 75, 3),
                ("2026-W09", f"{monday},{tuesday},{same_period}", uids["ben"], 25, 1),
            ],
            key=lambda row: row[2],
        )
        assert issuer.store.execute("SELECT COUNT(*) FROM settlements") == [(0,)], "no per-day card lines"
    finally:
        issuer.store.close()


def _no_broker():  # noqa: ANN202 - the backend is only asked to parse and store here, never to connect
    from firmware.reporting.mqtt import BrokerAddress

    return BrokerAddress.parse("mqtt://127.0.0.1:9")
