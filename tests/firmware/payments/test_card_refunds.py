"""A refund owed to a purse card is paid once, and never keeps the card from being used.

Two ways it went wrong: a refund whose credit the card was pulled through, then used three times
elsewhere, was paid a second time (its log no longer showed the first); and a refund, or an
operator's credit, that a full purse (NT$10,000) could not take made every tap fail, so the card
could neither buy nor ever receive it.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from firmware.domain import CardTap
from firmware.journal.card_steps import CardSteps
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import open_settlement
from simulator.backends.issuer import IssuerBackend
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.firmware.payments.test_card_unresolved import AMY, card_runner, used_elsewhere


def _tap(runner: ScenarioRunner) -> None:
    assert runner.purses is not None
    runner.machine.controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=runner.purses.link(AMY)))


def test_a_refund_pulled_through_then_lost_from_the_cards_log_is_never_paid_twice(tmp_path: Path, closing) -> None:
    world = ReportingWorld(tmp_path / "world")  # no broker: the machine's reports wait in its outbox
    runner = closing(card_runner(tmp_path, world))
    runner.start()
    purses = runner.purses
    assert purses is not None
    runner.dispenser.jam("A1")
    purses.tear_next(6)  # the debit's three writes and read-back, the refund's three writes: gone before its read-back
    runner.machine.controller.select("A1")
    _tap(runner)
    assert purses.balance(AMY) == 100, "the debit and the refund's credit are both on the card"
    (owed,) = CardSteps(runner.machine.db).all()
    assert (owed.kind, owed.counter, owed.before) == ("credit", 2, 75), "the refund's try, journaled before it"

    others = used_elsewhere(runner, 3)  # three steps elsewhere: the card's log no longer shows the refund
    assert purses.balance(AMY) == 70
    _tap(runner)
    runner.machine.controller.dispatch("cancel")
    assert purses.balance(AMY) == 70, "the refund was paid a second time"
    (left,) = CardSteps(runner.machine.db).all()
    assert (left.status, left.counter, left.before) == ("unknown", 2, 75), "left to the issuer, with what it read"

    rows = runner.machine.db.conn.execute(
        "SELECT payload FROM outbox WHERE stream = 'issuer' AND topic LIKE '%/unresolved'"
    ).fetchall()
    (payload,) = [json.loads(text) for (text,) in rows]
    keys = world.keys
    document = open_settlement(payload["sealed"], keys.seal_private, partial(keys.enrolment.verify, payload["machine"]))
    assert (document["counter"], document["amount"], document["before"]) == (2, -25, 75), "a credit, signed as such"
    issuer = IssuerBackend(BrokerAddress.parse("mqtt://127.0.0.1:9"), tmp_path / "issuer.db", keys.seal_private,
                           keys.issuer, keys.enrolment)  # fmt: skip
    try:
        report = issuer.report(payload["machine"], "unresolved", payload)
        assert report is not None
        issuer.store.store_many([report])
        insert = (
            "INSERT INTO card_steps (uid, counter, machine, amount, balance, mac, week) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        for step in others:
            issuer.store.execute(insert, tuple(step.values()))
        (decided,) = issuer.unresolved_debits()
        assert (decided.verdict, decided.amount) == ("made", -25), "the card has its refund: nothing is owed"
    finally:
        issuer.store.close()


def test_a_refund_a_full_purse_cannot_take_waits_and_the_card_still_buys(tmp_path: Path, closing) -> None:
    runner = closing(card_runner(tmp_path, ReportingWorld(tmp_path / "world"), purse=9990))
    runner.start()
    purses, controller = runner.purses, runner.machine.controller
    assert purses is not None
    purses.tear_next(3)  # the debit written, the card gone before its read-back: nothing vended, NT$25 owed
    controller.select("A1")
    _tap(runner)
    assert controller.last_transaction is not None and controller.last_transaction.reason == "card_removed"
    purses.topup(AMY, 35, "7-ELEVEN-SIM", runner.clock.now())  # a store fills the purse to the brim
    assert purses.balance(AMY) == 10_000

    _tap(runner)  # the refund cannot fit: it stays owed, and the card is read as usual
    assert controller.state.value == "awaiting_selection", "a card with a refund it cannot take was refused"
    assert [step.kind for step in CardSteps(runner.machine.db).all()] == ["credit"]
    controller.select("A1")
    assert controller.last_transaction is not None and controller.last_transaction.outcome == "vended"
    assert purses.balance(AMY) == 10_000 - 25

    _tap(runner)  # room now: the refund is paid, once
    controller.dispatch("cancel")
    assert purses.balance(AMY) == 10_000
    assert CardSteps(runner.machine.db).all() == []
    _tap(runner)
    controller.dispatch("cancel")
    assert purses.balance(AMY) == 10_000


def test_a_try_known_not_made_is_forgotten_while_the_purse_is_full_and_paid_once_there_is_room(
    tmp_path: Path, closing
) -> None:
    """A refund's try that the card shows was not made is owed as if never tried: were it kept, the card's
    log would move past it while the purse is full, and the refund would be left to the issuer unpaid."""
    runner = closing(card_runner(tmp_path, ReportingWorld(tmp_path / "world"), purse=9990))
    runner.start()
    purses, controller = runner.purses, runner.machine.controller
    assert purses is not None
    runner.dispenser.jam("A1")
    purses.tear_next(4)  # the debit, then the refund's credit pulled after its first write: not made
    controller.select("A1")
    _tap(runner)
    (owed,) = CardSteps(runner.machine.db).all()
    assert owed.counter == 2 and purses.balance(AMY) == 9965
    purses.topup(AMY, 35, "7-ELEVEN-SIM", runner.clock.now())  # the store's step takes counter #2
    _tap(runner)  # the try was not made and the purse is full: owed as if never tried
    controller.select("A1")
    assert controller.last_transaction is not None and controller.last_transaction.outcome == "vended"
    (owed,) = CardSteps(runner.machine.db).all()
    assert (owed.counter, owed.status) == (None, "open")
    used_elsewhere(runner, 2)  # the card's log now holds #3..#5: #2 is gone from it
    _tap(runner)
    controller.dispatch("cancel")
    assert purses.balance(AMY) == 9975 - 20 + 25, "the refund is paid here, once"
    assert CardSteps(runner.machine.db).all() == []
