"""The authorities' pushes in a scenario: the issuer's lost-card list (``hotlist:``), the school's controls.

Each keeps what its real tool keeps (`vending issuer hotlist`, `vending school controls`), publishes the
same signed and sealed messages through the run's broker, under the tool's own certificate (``TOOLS``: the
backend's would throw the backend off), and ends a step once every machine of the run applied the push,
as the next tap would find it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from firmware.app.node import Node
from firmware.errors import InputError
from firmware.reporting import topics
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.signed import canonical, sign_text
from simulator.backends.hotlist import HotlistRegistry, messages
from simulator.backends.issuer import IssuerBackend
from simulator.backends.push import publish
from simulator.dashboard.operator import operator_command
from simulator.dev_keys import DevKeys
from simulator.scenarios.runner import ScenarioRunner
from simulator.scenarios.schema import Step
from simulator.school.controls import SchoolControls
from simulator.school.roster import Student
from simulator.school.store import SchoolStore
from simulator.servers.broker_setup import TOOLS


class ReportingWorld(Protocol):
    """What the pushes need of the run's world (simulator/scenarios/reporting_world.py)."""

    @property
    def keys(self) -> DevKeys: ...

    @property
    def workdir(self) -> Path: ...

    def party_address(self, party: str) -> BrokerAddress: ...

    def school_up(self) -> object: ...

    @property
    def issuer(self) -> IssuerBackend | None: ...

    @property
    def broker_is_up(self) -> bool: ...

    @property
    def backend_is_up(self) -> bool: ...

    def once_linked(self, deliver: Callable[[], None]) -> None: ...


def step_error(runner: ScenarioRunner, step: Step, reason: str) -> InputError:
    """A step the story cannot play as written, named by its line (``vending run`` exits 2 with it)."""
    return InputError(runner.scenario.source, step.line, f"steps.{step.index}.{step.kind}", reason)


APPLY_TIMEOUT_S = 30.0


def keep_hotlist(world: ReportingWorld, runner: ScenarioRunner) -> None:
    """``hotlist:`` scenarios: this world's issuer keeps a lost-card list, published from the start.

    Each ``hotlist`` step changes it and publishes the change (as `vending issuer hotlist` does);
    the step ends once every machine of the run applied it, as the next tap would find it.
    """
    key = world.keys.trust.hotlist_key
    if key is None:
        raise RuntimeError(f"{world.keys.directory}: no hotlist.key")
    registry = HotlistRegistry(world.workdir / "issuer-hotlist.db")

    def publish_change(add: set[str], remove: set[str]) -> int:
        now = runner.clock.now()
        change = registry.change(add, remove, now, world.keys.issuer)
        found = messages(registry, change, world.keys.issuer, key, now, 24)
        publish(world.party_address(TOOLS["issuer"]), found, "issuer-hotlist")
        return change.version

    def holding(machine: Node, version: int) -> None:
        until_applied(machine, lambda: machine.hotlist.book.version() if machine.hotlist else version, version)

    def every_machine_holding(version: int) -> None:
        for machine in runner.nodes():  # the machines of then: one may have been power-cycled meanwhile
            holding(machine, version)

    def hotlist_step(step: Step) -> None:
        cards = runner.scenario.cards
        version = publish_change({cards[c].uid for c in step.value.add}, {cards[c].uid for c in step.value.remove})
        world.once_linked(partial(every_machine_holding, version))

    runner.hooks["hotlist"] = hotlist_step
    runner.on_boot.append(at_boot(world, runner, lambda machine: holding(machine, registry.version())))
    publish_change(set(), set())  # the issuer's standing list, retained: each machine waits for it at boot


def keep_controls(world: ReportingWorld, runner: ScenarioRunner) -> None:
    """``controls:`` scenarios: this world's school keeps the guardians' controls and pushes them.

    The roster is the run's cards (student = card name); the periods are the head's; every card's
    ``guardian:`` is on record from the start. Each ``controls`` step replaces one card's controls
    and pushes (as `vending school controls set` does); the step ends once every machine applied it.
    """
    key = world.keys.trust.controls_key
    if key is None:
        raise RuntimeError(f"{world.keys.directory}: no controls.key")
    scenario = runner.scenario
    store = SchoolStore(world.workdir / "school.db")
    store.replace_roster([Student(name, card.uid) for name, card in scenario.cards.items()])
    school = SchoolControls(store, world.keys.school)
    now = runner.clock.now()
    school.set_periods({name: spec.model_dump(by_alias=True) for name, spec in (scenario.periods or {}).items()},
                       now)  # fmt: skip
    for name, card in scenario.cards.items():
        if card.guardian is not None:
            school.decide(name, card.guardian.model_dump(mode="json"), now, clear=True)

    def push() -> None:
        code = scenario.machine.config.school.code
        message = school.message(code, key, runner.clock.now(), 24 * 7)
        publish(world.party_address(TOOLS["school"]), [message], "school-controls")

    def holding(machine: Node) -> None:
        until_applied(machine, lambda: machine.controls.version() if machine.controls else 0, school.version())

    def every_machine_holding() -> None:
        for machine in runner.nodes():
            holding(machine)

    def controls_step(step: Step) -> None:
        changes = step.value.model_dump(mode="json", exclude={"card"})
        school.decide(step.value.card, changes, runner.clock.now(), clear=True)
        push()
        world.once_linked(every_machine_holding)

    runner.hooks["controls"] = controls_step
    world.school_up()  # the guardian alerts the machines seal to the school
    runner.on_boot.append(at_boot(world, runner, holding))  # the controls, retained
    push()


def at_boot(world: ReportingWorld, runner: ScenarioRunner, hold: Callable[[Node], None]) -> Callable[[Node], None]:
    """A booting machine takes an authority's retained message before the story goes on.

    At once; or, booted while its link is cut, once the link is back (then as that machine is by
    then: it may have been power-cycled again meanwhile).
    """

    def booted(machine: Node) -> None:
        if world.broker_is_up:
            hold(machine)
            return
        machine_id = machine.machine_id
        world.once_linked(lambda: hold(next(node for node in runner.nodes() if node.machine_id == machine_id)))

    return booted


def until_applied(machine: Node, held: Callable[[], int], version: int) -> None:
    """Tick ``machine`` until it holds an authority's push of ``version`` (``held`` reads what it holds)."""
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while held() < version:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{machine.machine_id} did not apply version {version} of a push")
        machine.tick()
        time.sleep(0.005)


def keep_refunds(world: ReportingWorld, runner: ScenarioRunner) -> None:
    """``refund`` steps: the vendor's signed refund of the current machine's last sale.

    Sent through the broker as `vending cmd send refund` sends it (with the school's approval above the
    machine's limit); the step ends once the machine answered (with the link cut: at ``broker: up``),
    and a refusal fails the run at the step's line. A machine takes commands between sessions only, so
    a refund while a customer is at it, or with no sale to refund, is the story's mistake, named.
    """

    def refund_step(step: Step) -> None:
        station, machine = runner.current, runner.machine
        config = machine.controller.config
        row = machine.db.conn.execute(
            "SELECT txn_id FROM vends WHERE status = 'completed' ORDER BY at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise step_error(runner, step, "needs a sale on this machine before it (it refunds the last one)")
        if machine.controller.serving:
            state = machine.controller.state.value
            raise step_error(
                runner,
                step,
                f"the machine is serving a customer (state {state}) and takes commands only between sessions: "
                "end the session first (`cancel: true`, or a `wait:` past its timeout)",
            )
        fields: dict[str, Any] = {"txn": row[0], "amount": step.value.amount}
        if step.value.amount > config.security.refund_school_above:
            approval = {"approve": "refund", "machine": config.id, "txn": row[0], "amount": step.value.amount}
            fields["approval"] = json.loads(sign_text(world.keys.school, canonical(approval)))
        now = runner.clock.now()
        command_id, payload = operator_command(world.keys.vendor, config.id, "refund", fields, issued_at=now,
                                               lifetime=timedelta(minutes=5))  # fmt: skip
        command = (topics.command(config.id, "refund"), payload, False)
        publish(world.party_address(TOOLS["vendor"]), [command], "vendor-refund")  # the operator's tool

        def answered() -> None:
            if (later := station.machine).controller.serving:  # it waited for the link, and a customer came
                state = later.controller.state.value
                reason = f"reached the machine at `broker: up` while it was serving a customer (state {state})"
                raise step_error(runner, step, f"{reason}: end the session before the link is back")
            answer = until_answered(later, command_id)  # the station's machine of then (power cycles)
            if not answer.get("ok"):
                runner.check(step.line, "refund", "accepted", f"refused: {answer.get('reason')}")
            elif config.payment.mode == "card":  # the issuer lists the credit: every machine holds the new list
                deliver_credits(world, runner, [station.machine])

        world.once_linked(answered)

    runner.hooks["refund"] = refund_step
    if runner.scenario.machine.config.payment.mode == "card":  # and the refunds a card was not back for
        delivered = {node.machine_id: handed_over(node) for node in runner.nodes()}

        def catch_up() -> None:
            """The refunds machines handed the issuer since the last delivery (at a day's close)."""
            senders = [node for node in runner.nodes() if handed_over(node) > delivered.get(node.machine_id, 0)]
            deliver_credits(world, runner, senders)
            delivered.update({node.machine_id: handed_over(node) for node in senders})

        def delivering(play: Callable[[Step], None], step: Step) -> None:
            catch_up()  # a machine's tick between two steps may have closed a day
            play(step)
            catch_up()

        for kind, play in list(runner.steps.items()):
            runner.steps[kind] = partial(delivering, play)


def handed_over(node: Node) -> int:
    """Refunds ``node`` handed the issuer so far (left to it never tried); they stay, never paid here."""
    query = "SELECT COUNT(*) FROM card_steps WHERE kind = 'credit' AND status = 'unknown' AND counter IS NULL"
    return int(node.db.conn.execute(query).fetchone()[0])


def deliver_credits(world: ReportingWorld, runner: ScenarioRunner, senders: list[Node]) -> None:
    """The credits ``senders`` handed the issuer are listed, and every machine holds the issuer's newest list.

    Before the story goes on, as at a school whose machines are online; with the broker or the issuer
    down the credits wait in their machines' outboxes, as they would.
    """
    if not senders or world.issuer is None or not (world.broker_is_up and world.backend_is_up):
        return
    for node in senders:
        if node.publisher is not None:
            node.publisher.flush(APPLY_TIMEOUT_S)  # acked only once stored, and the new list published
    newest = world.issuer.credits.last_version
    for node in runner.nodes():
        until_applied(node, partial(credits_version, node), newest)


def until_answered(machine: Node, command_id: str) -> dict[str, Any]:
    """Tick ``machine`` until it journaled its answer to ``command_id``; the answer."""
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while True:
        machine.tick()
        for (data,) in machine.db.conn.execute("SELECT data FROM journal WHERE kind = 'command' ORDER BY id DESC"):
            answer: dict[str, Any] = json.loads(data)
            if answer.get("id") == command_id:
                return answer
        if time.monotonic() > deadline:
            raise RuntimeError(f"{machine.machine_id} did not answer command {command_id}")
        time.sleep(0.005)


def credits_version(node: Node) -> int:
    """The version of the issuer's pending-credits list a purse-card machine holds (0: none, or no purse)."""
    book = getattr(node.books.payment, "credits", None)
    return int(book.version()) if book is not None else 0
