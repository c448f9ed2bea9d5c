"""A torn debit the counters can never decide reaches the card through a reviewer's verdict.

The card is pulled after its debit was written (nothing vended), topped up at a store (a step no
machine settles), then used at two other machines: the machine's step goes to the issuer, whose next
settled step on the card is the store's, so the verdict stays ``unknown``. The issuer's staff decide
it with `vending issuer verdict` under the tool's own certificate, and the card's next tap at the
machine gives the NT$25 back, once.
"""

from __future__ import annotations

from pathlib import Path

from firmware.cards.purse_io import credit
from firmware.cards.tag import ClassicTag
from firmware.domain import CardTap
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.broker_setup import TOOLS
from tests.conftest import VENDING
from tests.firmware.payments.test_card_unresolved import AMY, card_runner, used_elsewhere
from tests.support.reporting import world  # noqa: F401 - fixture
from tests.support.waiting import eventually


def broker_options(world: ReportingWorld) -> list[str]:  # noqa: F811 - the fixture's name
    """The issuer tool's way onto the run's broker: its own certificate where the broker takes them."""
    address = world.party_address(TOOLS["issuer"])
    if not address.tls:
        return ["--broker", f"mqtt://{address.host}:{address.port}"]
    assert address.ca_file and address.cert_file and address.key_file
    return ["--broker", f"mqtts://{address.host}:{address.port}", "--ca", address.ca_file,
            "--cert", address.cert_file, "--cert-key", address.key_file]  # fmt: skip


def test_a_reviewed_debit_is_given_back_at_the_card_s_next_tap(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture: a real broker, the issuer's backend on it
    closing,
) -> None:
    import subprocess

    runner = closing(card_runner(tmp_path, world))
    runner.start()
    publisher, purses, controller = runner.machine.publisher, runner.purses, runner.machine.controller
    assert publisher is not None and publisher.wait_connected(15) and purses is not None
    issuer = world.issuer
    assert issuer is not None
    purses.tear_next(3)  # the debit is made on the card, nothing vended
    controller.select("A1")
    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))
    link = purses.link(AMY)
    assert link is not None
    with link() as exchange:  # a convenience store's top-up: counter 2, settled by no machine
        credit(ClassicTag(bytes.fromhex(AMY), exchange), purses.sam, 50, "STORE-7", runner.clock.now())
    insert = "INSERT INTO card_steps (uid, counter, machine, amount, balance, mac, week) VALUES (?, ?, ?, ?, ?, ?, ?)"
    for step in used_elsewhere(runner, 2):  # counters 3 and 4, settled by their machines
        issuer.store.execute(insert, tuple(step.values()))
    assert purses.balance(AMY) == 100 - 25 + 50 - 20

    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))  # left to the issuer
    controller.dispatch("cancel")
    assert publisher.flush(20), "the unresolved step reached the issuer"
    (left,) = issuer.unresolved_debits()
    assert left.verdict == "unknown", "the step after it is the store's: no counter decides it"
    assert issuer.credits.pending() == 0

    txn = left.txn
    decided = subprocess.run(
        [VENDING, "issuer", "verdict", "--machine", left.machine, "--txn", txn, "--made",
         "--reason", "the top-up network's record: counter 1 debited NT$25 before the store's top-up",
         "--keys", str(world.keys.directory), "--db", str(world.workdir / "issuer.db"), *broker_options(world)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert "made (reviewed), NT$25 listed for the card" in decided.stdout
    assert issuer.credits.pending() == 25
    book = getattr(runner.machine.books.payment, "credits", None)
    assert book is not None

    def listed() -> bool:
        runner.machine.tick()
        return bool(book.for_card(AMY) == [(1, 25)])

    eventually(listed, what="the machine holding the list the reviewer's tool published")
    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))
    controller.dispatch("cancel")
    assert purses.balance(AMY) == 105 + 25, "given back, NT$25"
    assert publisher.flush(20)
    eventually(lambda: issuer.credits.pending() == 0, what="the issuer hearing the card has it")
    assert issuer.refund_unresolved() == 0, "decided once: never acted on again"
    controller.present(CardTap(AMY, "virtual", runner.clock.now(), link=purses.link(AMY)))
    controller.dispatch("cancel")
    assert purses.balance(AMY) == 130, "given once"
