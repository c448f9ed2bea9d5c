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
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.broker_setup import TOOLS
from tests.conftest import VENDING
from tests.firmware.payments.test_card_unresolved import AMY, TornDebit, used_elsewhere
from tests.support.reporting import world  # noqa: F401 - fixture


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

    torn = TornDebit.made(tmp_path, world, closing)
    link = torn.purses.link(AMY)
    assert link is not None
    with link() as exchange:  # a convenience store's top-up: counter 2, settled by no machine
        credit(ClassicTag(bytes.fromhex(AMY), exchange), torn.purses.sam, 50, "STORE-7", torn.runner.clock.now())
    torn.settled(used_elsewhere(torn.runner, 2))  # counters 3 and 4, settled by their machines
    assert torn.purses.balance(AMY) == 100 - 25 + 50 - 20
    torn.tap_and_walk_away()  # left to the issuer
    torn.reported()
    issuer = torn.issuer
    (left,) = issuer.unresolved_debits()
    assert left.verdict == "unknown", "the step after it is the store's: no counter decides it"
    assert issuer.credits.pending() == 0

    decided = subprocess.run(
        [VENDING, "issuer", "verdict", "--machine", left.machine, "--txn", left.txn, "--made",
         "--reason", "the top-up network's record: counter 1 debited NT$25 before the store's top-up",
         "--keys", str(world.keys.directory), "--db", str(world.workdir / "issuer.db"), *broker_options(world)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert "made (reviewed), NT$25 listed for the card" in decided.stdout
    assert issuer.credits.pending() == 25
    torn.given_back(105 + 25)  # the list the reviewer's tool published
    assert issuer.refund_unresolved() == 0, "decided once: never acted on again"
    torn.tap_and_walk_away()
    assert torn.purses.balance(AMY) == 130, "given once"
