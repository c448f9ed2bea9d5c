"""The school's guardian controls: pushed signed and sealed, applied by version, judged before every sale.

Through a real broker (the embedded one and Mosquitto with the generated ACL and retain guard): the
school records a guardian's decision and pushes; the machine applies it between events and the next
sale is judged under it, on that card only; a push that is not the school's, not newer, expired, under
another key, naming a period the school does not have, or malformed changes nothing; the wire carries
no card number, no controls, and not how many cards have any.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from firmware.identity.pseudonym import controls_name
from firmware.identity.signing import Identity
from firmware.reporting import controls
from simulator.backends.push import publish
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from simulator.school.controls import SchoolControls
from simulator.school.roster import Student
from simulator.school.store import SchoolStore
from simulator.servers.broker_setup import TOOLS
from tests.support.reporting import (  # noqa: F401 - fixtures
    Capture,
    capture,
    configured_runner,
    decide,
    each_refused,
    pushes_refused,
    until_held,
    world,
)
from tests.support.waiting import eventually

AMY, BEN = "04A1B2C3D4E5F6", "04B2C3D4E5F607"
LUNCH = {"lunch": {"from": "12:00", "to": "13:30"}}


def controls_runner(tmp_path: Path, reporting: ReportingWorld) -> ScenarioRunner:
    return configured_runner(tmp_path, reporting, controls="school")


def school_of(tmp_path: Path, signer: Identity) -> SchoolControls:
    store = SchoolStore(tmp_path / "school.db")
    store.replace_roster([Student("amy", AMY), Student("ben", BEN)])
    return SchoolControls(store, signer)


def held(runner: ScenarioRunner, version: int) -> None:
    until_held(runner, runner.machine.controls, version, "controls")


def refused(runner: ScenarioRunner) -> int:
    return pushes_refused(runner, "controls")


def test_a_pushed_decision_holds_on_that_card_only_and_bad_pushes_change_nothing(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    capture: Capture,  # noqa: F811 - the fixture
    closing,
) -> None:
    runner = closing(controls_runner(tmp_path, world))
    keys, school_address = world.keys, world.party_address(TOOLS["school"])
    key = keys.trust.controls_key
    assert key is not None
    code = runner.machine.controller.config.school.code
    assert decide(runner, "A1", AMY)[:2] == ("vended", None), "no push yet: the local controls (none)"

    school = school_of(tmp_path, keys.school)
    closing(school.store)
    now = runner.clock.now()
    school.set_periods(LUNCH, now)
    version = school.decide("amy", {"linked": False}, now)
    publish(school_address, [school.message(code, key, now, 24)], "school-controls")
    held(runner, version)
    assert decide(runner, "A1", AMY)[:2] == ("denied", "card_not_linked")
    assert decide(runner, "A1", BEN)[:2] == ("vended", None), "no other card"

    # bad pushes, published by an insider with every right on the broker: each refused, nothing changes
    later = now + timedelta(hours=1)
    amy = controls_name(key, AMY)
    free = {amy: {"linked": True}}

    def push(signer: Identity, version_: int, issued: datetime, expires: datetime, cards: dict[str, Any] = free,
             periods: dict[str, Any] = LUNCH, with_key: bytes = key) -> str:  # fmt: skip
        return controls.compose(signer, with_key, version_, issued, expires, periods, cards)

    bad = [
        push(keys.school, version, later, later + timedelta(hours=24)),  # not newer: held already
        push(keys.vendor, 9, later, later + timedelta(hours=24)),  # not the school's
        push(keys.school, version - 1, later, later + timedelta(hours=24)),  # older: a replay
        push(keys.school, 10, later - timedelta(hours=30), later - timedelta(hours=6)),  # expired
        push(keys.school, 11, later, later + timedelta(hours=24), with_key=bytes(32)),  # another key
        push(keys.school, 12, later, later + timedelta(hours=24), cards={amy: {"period_limits": {"tea": 5}}}),
        push(keys.school, 13, later, later + timedelta(hours=24), cards={amy: {"blocked_allergens": ["walnut"]}}),
        push(keys.school, 14, later, later + timedelta(hours=24), periods={"lunch": {"from": "13:00", "to": "12:00"}}),
        "not json",
    ]  # fmt: skip
    held_again, *refusable = bad  # the version held, sent again, is no incident: the next one counts once
    publish(world.address, [(controls.topic(code), held_again, False)], "school-controls")
    each_refused(runner, world.address, "controls", [(controls.topic(code), p) for p in refusable], "school-controls")
    book = runner.machine.controls
    assert book is not None and book.version() == version
    assert decide(runner, "A1", AMY)[:2] == ("denied", "card_not_linked")

    version = school.decide("amy", {"linked": True, "daily_limit": 30}, now)
    publish(school_address, [school.message(code, key, now, 24)], "school-controls")
    held(runner, version)
    assert decide(runner, "A1", AMY)[:2] == ("denied", "guardian_limit"), "NT$25 already spent, NT$30 a day"

    # the wire: no card number, no controls, and a push for 1 card or 200 looks alike
    seen = b"".join(payload for _, payload, _ in capture.messages)
    assert AMY.encode() not in seen and BEN.encode() not in seen
    pushed = b"".join(payload for topic, payload, _ in capture.messages if topic == controls.topic(code))
    # (quoted: base64 has no quotes or underscores, so a word of the controls cannot turn up by chance)
    assert pushed and all(word not in pushed for word in (b"daily_limit", b'"linked"', b'"lunch"', b'"amy"'))
    many = {controls_name(key, f"04{n:06X}"): {"daily_limit": 50, "blocked_allergens": ["peanut"]} for n in range(200)}
    one = push(keys.school, 3, now, now + timedelta(hours=1))
    assert len(one) == len(push(keys.school, 3, now, now + timedelta(hours=1), cards=many))


def test_the_hostile_corpus_on_the_controls_topic_changes_nothing_and_the_machine_sells(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    closing,
) -> None:
    from tests.firmware.reporting.test_hostile_wire import attacker, corpus, publish_all

    runner = closing(controls_runner(tmp_path, world))
    keys, key = world.keys, world.keys.trust.controls_key
    assert key is not None
    code = runner.machine.controller.config.school.code
    school = school_of(tmp_path, keys.school)
    closing(school.store)
    now = runner.clock.now()
    version = school.decide("amy", {"blocked_categories": ["dairy"]}, now)
    publish(world.party_address(TOOLS["school"]), [school.message(code, key, now, 24)], "school-controls")
    held(runner, version)
    client, sent = attacker(world), corpus(world)
    try:
        publish_all(client, [controls.topic(code)], sent)
    finally:
        client.disconnect()
        client.loop_stop()

    def all_refused() -> bool:
        runner.machine.tick()
        return refused(runner) >= len(sent)

    eventually(all_refused, timeout=60, what="every hostile push refused")
    book = runner.machine.controls
    assert book is not None and book.version() == version
    assert decide(runner, "A1", AMY)[:2] == ("denied", "guardian_blocked") and decide(runner, "A1", BEN)[:2] == (
        "vended",
        None,
    )
