"""A purse debit whose fate the card's log no longer shows goes to the issuer, who decides it.

The card is pulled after the balance is written but before the read-back (nothing vended), then
used at three other machines before it comes back: its three-entry log has moved past the step, so
the machine cannot tell whether its debit was made. It hands the step (counter, amount, balance
before) to the issuer, sealed; the issuer matches it with the next step another machine settled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from firmware.cards.purse import step_mac
from firmware.cards.purse_io import debit
from firmware.cards.tag import ClassicTag
from firmware.domain import CardTap, Credit
from firmware.journal.card_steps import CardSteps
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import open_settlement
from simulator.backends.issuer import IssuerBackend
from simulator.scenarios import load_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import world  # noqa: F401 - fixture
from tests.support.waiting import eventually

AMY = "04A1B2C3"
SETTLED = "INSERT INTO card_steps (uid, counter, machine, amount, balance, mac, week) VALUES (?, ?, ?, ?, ?, ?, ?)"


def card_runner(tmp_path: Path, reporting: ReportingWorld, purse: int = 100) -> ScenarioRunner:
    script = tmp_path / "amy.yaml"
    script.write_text(
        f"machine: {ROOT / 'configs/machines/demo.yaml'}\npayment: card\nstart: '2026-03-02T09:00:00+08:00'\n"
        f"cards:\n  amy: {{uid: '{AMY}', profile: student, purse: {purse}}}\nsteps:\n  - note: driven by the test\n"
    )
    scenario = load_scenario(script)
    return ScenarioRunner(scenario, tmp_path / "machine", link=reporting.machine_link(scenario.machine.config.id))


def used_elsewhere(runner: ScenarioRunner, times: int) -> list[dict[str, Any]]:
    """The card debited NT$10 at other machines, 5 minutes apart, each step as its machine settles it."""
    purses = runner.purses
    assert purses is not None
    settled = []
    for n in range(times):
        runner.clock.advance(timedelta(minutes=5))
        link = purses.link(AMY)
        assert link is not None
        with link() as exchange:
            after = debit(
                ClassicTag(bytes.fromhex(AMY), exchange), purses.sam, 10, f"TPE-OTHER-{n}", runner.clock.now()
            )
        entry = after.log[0]
        mac = step_mac(purses.sam, bytes.fromhex(AMY), entry.counter, entry.amount, entry.balance)
        settled.append({"uid": AMY, "counter": entry.counter, "machine": f"TPE-OTHER-{n}", "amount": entry.amount,
                        "balance": entry.balance, "mac": mac, "week": "2026-W09"})  # fmt: skip
    runner.clock.advance(timedelta(minutes=5))
    return settled


@dataclass
class TornDebit:
    """A purse machine on a real broker whose NT$25 debit was made on AMY's card with nothing vended."""

    runner: ScenarioRunner
    issuer: IssuerBackend

    @classmethod
    def made(cls, tmp_path: Path, reporting: ReportingWorld, closing: Any) -> TornDebit:
        runner = closing(card_runner(tmp_path, reporting))
        runner.start()
        publisher, purses = runner.machine.publisher, runner.purses
        assert publisher is not None and publisher.wait_connected(15) and purses is not None
        assert reporting.issuer is not None
        purses.tear_next(3)  # the debit is made on the card, nothing vended
        runner.machine.controller.select("A1")
        torn = cls(runner, reporting.issuer)
        torn.tap()
        return torn

    @property
    def purses(self) -> Any:
        assert self.runner.purses is not None
        return self.runner.purses

    def tap(self) -> None:
        controller = self.runner.machine.controller
        controller.present(CardTap(AMY, "virtual", self.runner.clock.now(), link=self.purses.link(AMY)))

    def tap_and_walk_away(self) -> None:
        self.tap()
        self.runner.machine.controller.dispatch("cancel")

    def settled(self, steps: list[dict[str, Any]]) -> None:
        """Other machines' steps on the card, as their periods' settlements store them at the issuer."""
        for step in steps:
            self.issuer.store.execute(SETTLED, tuple(step.values()))

    def reported(self) -> None:
        publisher = self.runner.machine.publisher
        assert publisher is not None and publisher.flush(20), "the machine's reports reached the issuer"

    def given_back(self, balance: int) -> None:
        """The machine comes to hold the issuer's NT$25 for the card, gives it at the next tap, once."""
        book = getattr(self.runner.machine.books.payment, "credits", None)
        assert book is not None

        def listed() -> bool:
            self.runner.machine.tick()
            return bool(book.for_card(AMY) == [Credit(1, 25)])

        eventually(listed, what="the machine holding the issuer's list")
        self.tap_and_walk_away()
        assert self.purses.balance(AMY) == balance, "given back, NT$25"
        self.reported()
        eventually(lambda: self.issuer.credits.pending() == 0, what="the issuer hearing the card has it")


def test_a_step_the_card_s_log_moved_past_is_decided_by_the_issuer(tmp_path: Path, closing) -> None:
    offline = ReportingWorld(tmp_path / "world")  # no broker: the machine's reports wait in its outbox
    runner = closing(card_runner(tmp_path, offline))
    runner.start()
    purses, controller = runner.purses, runner.machine.controller
    assert purses is not None
    purses.tear_next(3)  # backup, log and balance written; gone before the read-back
    controller.select("A1")
    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))
    assert controller.last_transaction is not None and controller.last_transaction.reason == "card_removed"
    assert purses.balance(AMY) == 75, "the debit was made on the card; nothing was vended"

    others = used_elsewhere(runner, 3)  # the card at three other machines (a bus, a shop, the school's other one)
    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))
    controller.dispatch("cancel")
    (left,) = CardSteps(runner.machine.db).all()
    assert (left.status, left.counter, left.before) == ("unknown", 1, 100), "left to the issuer, with what it read"

    rows = runner.machine.db.conn.execute(
        "SELECT payload FROM outbox WHERE stream = 'issuer' AND topic LIKE '%/unresolved'"
    ).fetchall()
    assert len(rows) == 1, "one report hands the step to the issuer"
    payload = json.loads(rows[0][0])
    assert AMY not in rows[0][0], "the card number travels sealed"
    keys = offline.keys
    document = open_settlement(payload["sealed"], keys.seal_private, partial(keys.enrolment.verify, payload["machine"]))
    assert (document["counter"], document["amount"], document["before"]) == (1, 25, 100)

    issuer = IssuerBackend(BrokerAddress.parse("mqtt://127.0.0.1:9"), tmp_path / "issuer.db", keys.seal_private,
                           keys.issuer, keys.enrolment)  # fmt: skip
    try:
        assert issuer.unresolved_debits() == []
        report = issuer.report(payload["machine"], "unresolved", payload)
        assert report is not None
        issuer.store.store_many([report])
        (undecided,) = issuer.unresolved_debits()
        assert undecided.verdict == "unknown", "no machine settled the card's next step yet"
        for step in others:  # the other machines settle their steps with their periods
            issuer.store.execute(SETTLED, tuple(step.values()))
        (decided,) = issuer.unresolved_debits()
        assert (decided.verdict, decided.amount, decided.counter) == ("made", 25, 1), "the card is owed NT$25"
    finally:
        issuer.store.close()


def test_a_debit_the_issuer_finds_made_is_given_back_once_at_the_card_s_next_tap(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture: a real broker, the issuer's backend on it
    closing,
) -> None:
    """The issuer acts on its verdict: what the card is owed goes on its credits list, once, for any machine."""
    torn = TornDebit.made(tmp_path, world, closing)
    torn.settled(used_elsewhere(torn.runner, 3))  # settled before this machine's report arrives
    assert torn.purses.balance(AMY) == 45
    torn.tap_and_walk_away()  # left to the issuer
    torn.reported()
    issuer = torn.issuer
    eventually(lambda: issuer.credits.pending() == 25, what="the issuer listing the NT$25 it found taken")
    torn.given_back(70)

    issuer.store.purge("2099-01-01")  # retention forgets the given credit with its day ...
    assert issuer.store.execute("SELECT COUNT(*) FROM pending_credits") == [(0,)]
    assert issuer.refund_unresolved() == 0, "... and the verdict is never acted on again"
    assert issuer.credits.pending() == 0
    torn.tap_and_walk_away()
    assert torn.purses.balance(AMY) == 70, "given once"


def test_steps_whose_card_is_not_back_within_a_week_are_left_to_the_issuer_once(tmp_path: Path, closing) -> None:
    """A debit a pulled card may have paid, and a refund never tried: a week on, at a day's close, the issuer's.

    The debit goes as an ``unresolved`` step (the issuer decides it from the card's next settled step);
    the refund as a ``credit`` the issuer lists for every machine. Neither is settled here again.
    """
    offline = ReportingWorld(tmp_path / "world")  # no broker: the reports wait in the outbox, where they are counted
    runner = closing(card_runner(tmp_path, offline))
    runner.start()
    purses, controller, db = runner.purses, runner.machine.controller, runner.machine.db
    assert purses is not None
    purses.tear_next(3)  # the debit written, the card gone before the read-back: its fate is on the card
    controller.select("A1")
    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))
    steps = CardSteps(db)
    (debit_step,) = steps.all()
    refund_txn = "TPE-DAAN-JH-01-00000000000000aa"
    with db.atomic("card_step"):  # a refund owed since the same morning (a jam the card left before)
        steps.owe(refund_txn, AMY, 20, runner.clock.now())

    def reports(topic: str) -> int:
        return int(db.conn.execute("SELECT COUNT(*) FROM outbox WHERE topic LIKE ?", (f"%/{topic}",)).fetchone()[0])

    for days in range(1, 10):
        runner.clock.advance(timedelta(days=1))
        runner.machine.tick()  # each local midnight's close
        left = {step.txn_id: step.status for step in steps.all()}
        if days < 7:
            assert left == {debit_step.txn_id: "open", refund_txn: "open"}, f"still this machine's on day {days}"
    assert left == {debit_step.txn_id: "unknown", refund_txn: "unknown"}, "the issuer's now"
    assert (reports("unresolved"), reports("credit")) == (1, 1), "each handed over once, in the commit that left it"
    assert AMY not in "".join(row[0] for row in db.conn.execute("SELECT payload FROM outbox")), "sealed"
    assert runner.machine.books.invariant_total() == 0, "the machine holds no refund it handed over"
