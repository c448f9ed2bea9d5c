"""The issuer's pending-credits list: signed and sealed, applied by version; anything else changes nothing.

Through a real broker (the embedded one and Mosquitto with the generated ACL and retain guard): a purse-card
machine applies the issuer's list; a list not the issuer's, under another key, older or expired, and the
whole hostile-input corpus on its topic, are refused and counted; the card is named, never numbered.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from firmware.config.machine import PaymentSetup
from firmware.domain import Credit
from firmware.identity.pseudonym import hotlist_name
from firmware.reporting import credits
from simulator.backends.push import publish
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from simulator.servers.broker_setup import TOOLS
from tests.support.reporting import configured_runner, pushes_refused, until_held, world  # noqa: F401 - fixtures
from tests.support.waiting import eventually

AMY = "04A1B2C3D4E5F6"


def purse_runner(tmp_path: Path, reporting: ReportingWorld) -> ScenarioRunner:
    return configured_runner(tmp_path, reporting, payment=PaymentSetup(mode="card"))


def refused(runner: ScenarioRunner) -> int:
    return pushes_refused(runner, "credits")


def test_only_the_issuer_s_newer_list_is_applied_and_hostile_ones_change_nothing(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    closing,
) -> None:
    from tests.firmware.reporting.test_hostile_wire import attacker, corpus, publish_all

    runner = closing(purse_runner(tmp_path, world))
    keys, key = world.keys, world.keys.trust.hotlist_key
    assert key is not None
    book = getattr(runner.machine.books.payment, "credits", None)
    assert book is not None, "a purse-card machine with the issuer's key takes its credits"
    now = runner.clock.now()
    listed = {hotlist_name(key, AMY): [Credit(1, 25)]}
    genuine = credits.compose(keys.issuer, key, 5, now, now + timedelta(days=1), listed)
    publish(world.party_address(TOOLS["issuer"]), [(credits.TOPIC, genuine, True)], "issuer-credits")

    until_held(runner, book, 5, "the issuer's credits list")
    assert book.for_card(AMY) == [Credit(1, 25)] and book.for_card("04B2C3D4E5F607") == []

    later = now + timedelta(hours=1)
    bad = [
        credits.compose(keys.vendor, key, 9, later, later + timedelta(days=1), {}),  # not the issuer's
        credits.compose(keys.issuer, bytes(32), 9, later, later + timedelta(days=1), {}),  # another key
        credits.compose(keys.issuer, key, 4, later, later + timedelta(days=1), {}),  # older: a replay
        credits.compose(keys.issuer, key, 9, later - timedelta(days=2), later - timedelta(days=1), {}),  # expired
    ]
    client, hostile = attacker(world), corpus(world)
    before = refused(runner)
    try:
        publish_all(client, [credits.TOPIC], [*(text.encode() for text in bad), *hostile])
    finally:
        client.disconnect()
        client.loop_stop()

    def all_refused() -> bool:
        runner.machine.tick()
        return refused(runner) - before >= len(bad) + len(hostile)

    eventually(all_refused, timeout=60, what="every bad credits list refused")
    assert book.version() == 5 and book.for_card(AMY) == [Credit(1, 25)], "nothing changed"
    assert AMY.encode() not in genuine.encode(), "the card is named, never numbered"
