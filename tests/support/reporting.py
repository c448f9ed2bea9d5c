"""Brokers for the reporting suite: the embedded one always, and a real Mosquitto.

Mosquitto comes from Debian's package (make test installs it when root). Where it is missing the
Mosquitto half of the suite skips with the install command -- except under CI=true, where it fails.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from firmware.app.command_gate import command_body, compose_command
from firmware.identity.signing import Identity
from firmware.reporting.mqtt import BrokerAddress, make_client
from simulator.backends.vendor import VendorBackend
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from simulator.servers.broker_setup import INSIDER
from simulator.servers.mosquitto import mosquitto_binary
from simulator.servers.retain_guard import PACKAGES as RETAIN_GUARD_PACKAGES
from simulator.servers.retain_guard import buildable as retain_guard_buildable
from tests.support.packages import missing_package

BROKERS = ["embedded", "mosquitto"]
PUSH_WAIT_S = 20.0  # each_refused: how long a bad push may take to be counted before it is sent again
PUSH_TRIES = 3


def require_mosquitto() -> None:
    if mosquitto_binary() is None:
        missing_package("mosquitto", "mosquitto mosquitto-clients")
    if not retain_guard_buildable():  # the generated broker's plugin (simulator/servers/plugins/retain_guard.c)
        missing_package("mosquitto-dev", RETAIN_GUARD_PACKAGES)


@dataclass
class Capture:
    """An all-topics subscriber: every payload any party published, for contract and privacy checks."""

    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    client: mqtt.Client | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self, address: BrokerAddress) -> Capture:
        self.client = make_client(address, "capture-all", persistent=False)

        def subscribe(client: mqtt.Client, *_: object) -> None:
            client.subscribe("#", qos=1)
            self.ready.set()

        self.client.on_connect = subscribe
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload), m.retain))
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert self.ready.wait(10), "capture client could not subscribe"
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def json_of(self, suffix: str) -> list[dict]:
        """The signed envelopes published on topics ending in ``suffix``; a batched report counts as one
        of its kind, as ``{"payload": <report text>}`` (its signature is the batch's, on the manifest)."""
        return [json.loads(p) for t, p, _ in self.unbatched() if t.endswith(suffix)]

    def unbatched(self) -> list[tuple[str, bytes, bool]]:
        """Every message, each batch replaced by its reports on the topics they would have travelled alone."""
        found: list[tuple[str, bytes, bool]] = []
        for topic, raw, retained in self.messages:
            if not topic.endswith("/batch"):
                found.append((topic, raw, retained))
                continue
            batch = json.loads(raw)
            entries = json.loads(batch["manifest"]["payload"])["reports"]
            prefix = topic.rsplit("/", 1)[0]
            for entry, text in zip(entries, batch["reports"], strict=True):
                found.append((f"{prefix}/{entry['kind']}", json.dumps({"payload": text}).encode(), False))
        return found


@pytest.fixture(params=BROKERS)
def world(request, tmp_path: Path) -> Iterator[ReportingWorld]:
    if request.param == "mosquitto":
        require_mosquitto()
    started = ReportingWorld(tmp_path / "world", broker=request.param, resend_after_s=1.0).start()
    yield started
    started.stop()


@pytest.fixture
def capture(world: ReportingWorld) -> Iterator[Capture]:
    cap = Capture().start(world.address)
    yield cap
    cap.stop()


def broker_client(world: ReportingWorld, client_id: str) -> mqtt.Client:
    """A connected client with every right on the run's broker: an insider (TLS + certificate on Mosquitto).

    On the generated Mosquitto the client id is the certificate's name, so this is a second insider
    certificate: the capture (``world.address``) and this client are connected at once.
    """
    access = world.broker_access()
    address = access.party(f"{INSIDER}-2") if access.setup is not None else world.address
    client = make_client(address, client_id, persistent=False)
    client.connect(address.host, address.port)
    client.loop_start()
    return client


def shared_vendors(
    world: ReportingWorld, db: Path | str, group: str, closing: Callable[[Any], Any], count: int = 2
) -> list[VendorBackend]:
    """Replace the world's vendor backend by ``count`` instances in one ``$share`` group on one store."""
    assert world.vendor is not None
    world.vendor.stop()
    instances = [  # each instance its own certificate on the generated broker (one certificate, one connection)
        closing(world.new_vendor(db, client_id=f"{group}-vendor-{i}", group=group, identity=identity).start())
        for i, identity in enumerate(["vendor", *(f"vendor-{n}" for n in range(2, count + 1))])
    ]
    world.vendor = instances[0]
    return instances


def decide(runner: ScenarioRunner, slot: str, uid: str) -> tuple[str | None, str | None, str]:
    """Selection, then the card ``uid``: (outcome, reason, what the display said); then a minute passes.

    The minute lets a refused card's session time out, so the next call starts from idle.
    """
    from datetime import timedelta

    from firmware.domain import CardTap

    controller = runner.machine.controller
    controller.select(slot)
    controller.present(CardTap(uid, "virtual", runner.clock.now()))
    last, shown = controller.last_transaction, runner.display.text()
    runner.clock.advance(timedelta(minutes=1))
    runner.machine.tick()
    assert last is not None, "no decision"
    return last.outcome, last.reason, shown


def sell(runner: ScenarioRunner, slot: str, card: str) -> None:
    """One sale, selection first, then a minute of virtual time."""
    from datetime import timedelta

    from firmware.domain import CardTap

    runner.machine.controller.select(slot)
    runner.machine.controller.present(CardTap(runner.scenario.cards[card].uid, "virtual", runner.clock.now()))
    runner.clock.advance(timedelta(minutes=1))


def sell_many(runner: ScenarioRunner, count: int, card: str = "lin") -> None:
    """A stream of sales on virtual time, half a minute apart, cycling through five compliant slots."""
    from datetime import timedelta

    from firmware.domain import CardTap

    controller = runner.machine.controller
    uid = runner.scenario.cards[card].uid
    for i in range(count):
        controller.dispatch("select", ["A1", "A3", "D1", "E1", "E2"][i % 5])
        controller.present(CardTap(uid, "virtual", runner.clock.now()))
        runner.clock.advance(timedelta(seconds=30))


@contextmanager
def attached_runner(
    world: ReportingWorld, tmp_path: Path, scenario: str = "normal-morning"
) -> Iterator[ScenarioRunner]:
    """A machine from a shipped scenario, reporting through ``world``, connected; detached and closed after."""
    from simulator.scenarios import load_scenario
    from tests.conftest import CONFIGS

    loaded = load_scenario(CONFIGS / "scenarios" / f"{scenario}.yaml")
    runner = ScenarioRunner(loaded, tmp_path / "machine", link=world.machine_link(loaded.machine.config.id))
    detach = world(runner)
    runner.start()
    try:
        assert world.publisher is not None and world.publisher.wait_connected(15), (
            "the machine could not reach the broker"
        )
        yield runner
    finally:
        detach()
        runner.close()


_COUNTER = itertools.count(1)


def signed_command(
    world: ReportingWorld,
    runner: ScenarioRunner,
    name: str,
    body: dict[str, Any],
    *,
    signer: str | Identity = "vendor",
    machine: str | None = None,
    issued_at: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    counter: int | None = None,
) -> bytes:
    """A command as `vending cmd send` makes it, signed by one of the run's parties (or a stranger key)."""
    identity = getattr(world.keys, signer) if isinstance(signer, str) else signer
    fields = {k: v for k, v in body.items() if k != "id"}
    made = command_body(
        machine or runner.machine.controller.config.id,
        name,
        fields,
        issued_at or runner.clock.now(),
        lifetime,
        counter if counter is not None else next(_COUNTER),
        str(body.get("id", f"c{time.monotonic_ns()}")),
    )
    return compose_command(identity, made).encode()


def configured_runner(tmp_path: Path, reporting: ReportingWorld, **config: Any) -> ScenarioRunner:
    """The normal-morning machine with these config fields replaced, reporting through ``reporting``, connected."""
    from dataclasses import replace

    from simulator.scenarios import load_scenario
    from tests.conftest import CONFIGS

    scenario = load_scenario(CONFIGS / "scenarios" / "normal-morning.yaml")
    setup = scenario.machine
    changed = setup.config.model_copy(update=config)
    scenario = replace(scenario, machine=replace(setup, config=changed))
    runner = ScenarioRunner(scenario, tmp_path / "machine", link=reporting.machine_link(changed.id))
    runner.start()
    assert runner.machine.publisher is not None and runner.machine.publisher.wait_connected(10)
    return runner


def until_held(runner: ScenarioRunner, book: Any, version: int, what: str) -> None:
    """Tick the machine until ``book`` (a pushed list it holds) is at ``version``."""
    from tests.support.waiting import eventually

    def arrived() -> bool:
        runner.machine.tick()
        return bool(book.version() == version)

    eventually(arrived, what=f"{what} version {version} applied")


def pushes_refused(runner: ScenarioRunner, kind: str) -> int:
    """How many pushes of ``kind`` (hotlist, controls, credits) the machine refused so far."""
    pushes = runner.machine.pushes
    assert pushes is not None
    return pushes.refused[kind]


def each_refused(
    runner: ScenarioRunner, address: BrokerAddress, kind: str, bad: list[tuple[str, str]], who: str
) -> None:
    """Publish each bad ``(topic, payload)`` push in turn: each refused and counted exactly once.

    The embedded broker (amqtt) promises no delivery (``simulator/servers/broker.py``): once under a
    loaded suite the last of a burst of pushes never reached the machine. A push that is not counted
    within ``PUSH_WAIT_S`` is therefore sent again (at most ``PUSH_TRIES`` times in all); a push
    counted twice, or one refused without being counted, fails the test.
    """
    from simulator.backends.push import publish
    from tests.support.waiting import poll

    for topic, payload in bad:
        before = pushes_refused(runner, kind)
        counted = partial(_counted_once, runner, kind, before, payload)
        for attempt in range(1, PUSH_TRIES + 1):
            publish(address, [(topic, payload, False)], who)
            if poll(counted, PUSH_WAIT_S) or attempt == PUSH_TRIES:
                break
        assert pushes_refused(runner, kind) == before + 1, f"a bad push ({payload[:40]!r}) was never refused"


def _counted_once(runner: ScenarioRunner, kind: str, before: int, payload: str) -> bool:
    """After a tick, whether the machine's count of refused ``kind`` pushes is one more than ``before``."""
    runner.machine.tick()
    now = pushes_refused(runner, kind)
    assert now <= before + 1, f"a bad push ({payload[:40]!r}) counted {now - before} times"
    return now == before + 1
