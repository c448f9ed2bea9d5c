"""The issuer's lost-card hotlist: pushed signed and sealed, applied by version, checked before every sale.

Through a real broker (the embedded one and Mosquitto with the generated ACL and retain guard): the
issuer lists a card, every machine holding the list refuses it (`card_blocked`) and no other card;
a machine without a current list refuses cards it cannot check; a list that is not the issuer's,
not newer, out of order or expired changes nothing; the wire carries no card number and does not
tell how many cards are listed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from firmware.config.machine import HotlistSetup
from firmware.identity.pseudonym import hotlist_name
from firmware.reporting.hotlist import DELTA_TOPIC, FULL_TOPIC, compose_delta, compose_full
from simulator.backends.hotlist import HotlistRegistry, messages
from simulator.backends.push import publish
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from simulator.servers.broker_setup import TOOLS
from tests.support.reporting import Capture, capture, configured_runner, decide, each_refused, until_held, world  # noqa: F401 - fixtures
from tests.support.waiting import eventually

AMY, BEN = "04A1B2C3D4E5F6", "04B2C3D4E5F607"


def hotlist_runner(tmp_path: Path, reporting: ReportingWorld) -> ScenarioRunner:
    return configured_runner(tmp_path, reporting, hotlist=HotlistSetup(when_stale="refuse"))


def buy(runner: ScenarioRunner, uid: str) -> tuple[str | None, str | None]:
    return decide(runner, "A1", uid)[:2]


def held(runner: ScenarioRunner, version: int) -> None:
    hotlist = runner.machine.hotlist
    assert hotlist is not None
    until_held(runner, hotlist.book, version, "hotlist")


def test_a_listed_card_is_refused_and_no_other_and_bad_lists_change_nothing(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    capture: Capture,  # noqa: F811 - the fixture
    closing,
) -> None:
    runner = closing(hotlist_runner(tmp_path, world))
    keys, issuer_address = world.keys, world.party_address(TOOLS["issuer"])
    key = keys.trust.hotlist_key
    assert key is not None
    assert buy(runner, BEN) == ("denied", "hotlist_stale"), "no list yet: a card cannot be checked"

    registry = closing(HotlistRegistry(tmp_path / "issuer-hotlist.db"))
    now = runner.clock.now()
    first = registry.change(set(), set(), now, keys.issuer)  # every publication is a new version (a new expiry too)
    publish(issuer_address, messages(registry, first, keys.issuer, key, now, 24), "issuer-hotlist")
    held(runner, 1)
    assert buy(runner, BEN) == ("vended", None), "a current list, the card not on it"
    change = registry.change({AMY}, set(), now, keys.issuer)
    publish(issuer_address, messages(registry, change, keys.issuer, key, now, 24), "issuer-hotlist")
    held(runner, 2)
    assert buy(runner, AMY) == ("denied", "card_blocked")
    assert buy(runner, BEN) == ("vended", None), "no other card"

    # bad lists, published by an insider with every right on the broker: each refused, nothing changes
    hotlist = runner.machine.hotlist
    assert hotlist is not None
    later = now + timedelta(hours=1)
    forged = compose_full(keys.vendor, key, 9, later, later + timedelta(hours=24), set())  # not the issuer's
    replayed = compose_full(keys.issuer, key, 1, later, later + timedelta(hours=24), set())  # not newer
    skipped = compose_delta(keys.issuer, key, 5, later, later + timedelta(hours=24), set(), {hotlist_name(key, AMY)})
    expired = compose_full(keys.issuer, key, 7, later - timedelta(hours=30), later - timedelta(hours=6), set())
    strange = compose_full(keys.issuer, bytes(32), 8, later, later + timedelta(hours=24), set())  # another key
    bad = [(FULL_TOPIC, forged), (FULL_TOPIC, replayed), (DELTA_TOPIC, skipped), (FULL_TOPIC, expired),
           (FULL_TOPIC, strange), (DELTA_TOPIC, "not json")]  # fmt: skip
    each_refused(runner, world.address, "hotlist", bad, "issuer-hotlist")
    assert hotlist.book.version() == 2 and buy(runner, AMY) == ("denied", "card_blocked")

    change = registry.change(set(), {AMY}, now, keys.issuer)  # found again
    publish(issuer_address, messages(registry, change, keys.issuer, key, now, 24), "issuer-hotlist")
    held(runner, 3)
    assert buy(runner, AMY) == ("vended", None)

    # the wire: no card number, and lists of different lengths look alike
    sent = [payload for topic, payload, _ in capture.messages if topic.startswith(FULL_TOPIC)]
    seen = b"".join(payload for _, payload, _ in capture.messages)
    assert sent and AMY.encode() not in seen and BEN.encode() not in seen
    one = compose_full(keys.issuer, key, 3, now, now + timedelta(hours=1), {hotlist_name(key, AMY)})
    many = compose_full(
        keys.issuer, key, 3, now, now + timedelta(hours=1), {hotlist_name(key, f"04{n:06X}") for n in range(200)}
    )
    assert len(one) == len(many), "a list of 1 and of 200 lost cards are the same size on the wire"
    beats = [
        json.loads(json.loads(raw)["payload"]) for topic, raw, _ in capture.messages if topic.endswith("/heartbeat")
    ]
    assert beats and beats[0]["hotlist"] == "none", "the machine's heartbeat said it had no list to check against"


def test_the_hostile_corpus_on_the_hotlist_topics_changes_nothing_and_the_machine_sells(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    closing,
) -> None:
    from tests.firmware.reporting.test_hostile_wire import attacker, corpus, publish_all

    runner = closing(hotlist_runner(tmp_path, world))
    keys, key = world.keys, world.keys.trust.hotlist_key
    assert key is not None
    registry = closing(HotlistRegistry(tmp_path / "issuer-hotlist.db"))
    now = runner.clock.now()
    change = registry.change({AMY}, set(), now, keys.issuer)
    publish(
        world.party_address(TOOLS["issuer"]), messages(registry, change, keys.issuer, key, now, 24), "issuer-hotlist"
    )
    held(runner, 1)
    client, sent = attacker(world), corpus(world)
    try:
        publish_all(client, [FULL_TOPIC, DELTA_TOPIC], sent)
    finally:
        client.disconnect()
        client.loop_stop()

    def all_refused() -> bool:
        runner.machine.tick()
        return runner.machine.hotlists_refused >= 2 * len(sent)

    eventually(all_refused, timeout=60, what="every hostile hotlist refused")
    hotlist = runner.machine.hotlist
    assert hotlist is not None and hotlist.book.version() == 1
    assert buy(runner, AMY) == ("denied", "card_blocked") and buy(runner, BEN) == ("vended", None)
