"""payment: {mode: account}: the issuer holds the money; the machine asks, and when it cannot, follows its offline rule.

Through a real broker (embedded here; Mosquitto with TLS and the generated ACL in the second test),
the issuer backend in this process, and the machine's own outbox: every figure below is what the
issuer's database and the machine's books say after the reports drained.
"""

from __future__ import annotations

import time
from pathlib import Path

from simulator.backends.accounts import AccountBook
from simulator.scenarios import load_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import Capture, capture, configured_runner, decide, world  # noqa: F401 - fixtures

AMY, BEN, LIN = "04A1B2C3D4E5F6", "04B2C3D4E5F607", "0499887766AA01"
# long enough that an online answer from the issuer in this process is not missed on a loaded box (the
# whole suite on two cores once took over 200 ms), short enough that the offline part stays quick
ISSUER_TIMEOUT_MS = 1000


def account_runner(tmp_path: Path, reporting: ReportingWorld, offline_limit: int = 60) -> ScenarioRunner:
    setup = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml").machine
    update = {"mode": "account", "timeout_ms": ISSUER_TIMEOUT_MS, "offline_limit": offline_limit}
    return configured_runner(tmp_path, reporting, payment=setup.config.payment.model_copy(update=update))


def open_accounts(reporting: ReportingWorld) -> AccountBook:
    assert reporting.issuer is not None
    book, issuer = reporting.issuer.accounts, reporting.keys.issuer
    day = "2026-03-02"
    book.order(issuer, {"order": "open", "card": AMY, "profile": "student", "born": "2011-05-01", "day": day})
    book.order(issuer, {"order": "link", "card": AMY, "guardian": "guardian-amy"})
    book.order(issuer, {"order": "topup", "card": AMY, "amount": 200})
    book.order(issuer, {"order": "open", "card": BEN, "profile": "student", "born": "2011-09-09", "day": day})
    book.order(issuer, {"order": "topup", "card": BEN, "amount": 100})
    book.order(issuer, {"order": "open", "card": LIN, "profile": "staff", "born": "1980-01-01", "day": day})
    book.order(issuer, {"order": "topup", "card": LIN, "amount": 300})
    return book


SHOWN: list[str] = []  # what the display said at each decision, newest last


def buy(runner: ScenarioRunner, slot: str, uid: str) -> tuple[str | None, str | None]:
    outcome, reason, shown = decide(runner, slot, uid)
    SHOWN.append(shown)
    return outcome, reason


def balance(book: AccountBook, uid: str) -> int:
    account = book.get(uid)
    assert account is not None
    return account.balance


def drained(runner: ScenarioRunner) -> None:
    publisher = runner.machine.publisher
    assert publisher is not None and publisher.flush(20), "the machine's outbox did not drain"


def conserved(runner: ScenarioRunner, book: AccountBook, started: int) -> None:
    takings = runner.machine.books.vends.takings()
    declined = sum(amount for _, _, amount in book.declined_debts())
    assert book.total() + takings - declined == started, (book.total(), takings, declined, started)


def no_card_number_on_the_wire(captured: Capture) -> None:
    seen = b"".join(topic.encode() + payload for topic, payload, _ in captured.messages)
    assert captured.messages and not any(uid.encode() in seen for uid in (AMY, BEN, LIN))


def test_online_decisions_come_from_the_issuer_and_offline_ones_from_the_limit(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    capture: Capture,  # noqa: F811 - the fixture
    closing,
) -> None:
    book = open_accounts(world)
    started = book.total()
    runner = closing(account_runner(tmp_path, world))
    assert buy(runner, "A1", AMY) == ("vended", None)
    assert balance(book, AMY) == 175, "an online approval debits at the issuer at once"
    assert buy(runner, "A1", BEN) == ("denied", "card_not_linked"), "a minor without a guardian's consent"
    assert "not enabled for payment" in SHOWN[-1]
    book.order(world.keys.issuer, {"order": "cap", "card": AMY, "daily_cap": 40})
    assert buy(runner, "A1", AMY) == ("denied", "guardian_limit"), "the guardian's cap counts every machine's debits"
    assert buy(runner, "A1", LIN) == ("vended", None), "an adult needs no guardian"
    drained(runner)
    conserved(runner, book, started)

    assert world.issuer is not None
    world.issuer.abandon()  # the issuer goes away: no answers within the timeout
    world.issuer = None
    asked = time.monotonic()
    assert buy(runner, "A1", LIN) == ("vended", None), "offline: approved within the card's offline limit"
    assert time.monotonic() - asked < ISSUER_TIMEOUT_MS / 1000 + 2.0, "the offline rule decided soon after the timeout"
    assert buy(runner, "A1", LIN) == ("vended", None)
    assert buy(runner, "A1", LIN) == ("denied", "offline_limit"), "60 a day offline: a third 25 is over it"
    assert "offline limit NT$60 a day (spent offline today NT$50)" in SHOWN[-1]

    world.issuer = world.new_issuer().start()  # back: the machine's captures arrive from its outbox
    assert world.issuer.subscribed.wait(15)
    drained(runner)
    book = world.issuer.accounts
    assert balance(book, LIN) == 300 - 3 * 25, "two offline captures charged once each"
    conserved(runner, book, started)
    rows = book.store.execute("SELECT how, state FROM account_debits WHERE uid = ? ORDER BY how", (LIN,))
    expected = [("offline", "debited"), ("offline", "debited"), ("online", "debited")]
    assert sorted(rows) == expected, "the third was refused before any debit was asked for"
    no_card_number_on_the_wire(capture)
    # (amqtt re-sends every retained message matching *any* client's filter to a resumed session, so the
    # restarted issuer refuses the vendor's stock and status as incidents there; none is about accounts)
    refused = book.store.execute("SELECT topic FROM incidents")
    assert not [topic for (topic,) in refused if "auth" in topic or "account" in topic], refused


def test_a_jam_gives_the_money_back_at_the_issuer(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    closing,
) -> None:
    book = open_accounts(world)
    started = book.total()
    runner = closing(account_runner(tmp_path, world))
    runner.dispenser.jam("A1")
    assert buy(runner, "A1", LIN) == ("refunded", "no_drop")
    drained(runner)
    assert balance(book, LIN) == 300
    conserved(runner, book, started)
