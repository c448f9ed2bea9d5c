"""Runs a scenario against a real controller on virtual time, checking expectations and invariants."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from transitions import MachineError

from firmware import crashpoints
from firmware.app.node import Link, Node
from firmware.controller.notices import privacy_notice
from firmware.controller.records import Hardware
from firmware.errors import InputError
from simulator.hardware.virtual import DoorSwitch, RecordingDisplay, VirtualClock, VirtualDispenser, advance
from simulator.scenarios.card_specs import UnknownCard
from simulator.scenarios.purses import PurseCards, simulation_card_master
from simulator.scenarios.results import ExpectationResult, ScenarioResult
from simulator.scenarios.schema import MAIN_MACHINE, Scenario, Step, uid_tail
from simulator.scenarios.stations import LinkFor, issue_cards, stations_of
from simulator.scenarios.step_types import parse_duration
from simulator.scenarios.tap_sources import TapSourceFactory, VirtualTaps
from simulator.term_keys import simulation_term_key

EventPrinter = Callable[[datetime, str, dict[str, Any]], None]


RUNNER_STEPS = (
    "select", "tap", "cancel", "wait", "at", "clock", "door", "restock", "jam", "empty", "fault", "recover", "note",
    "privacy", "power", "expect", "tear", "topup", "machine",
)  # fmt: skip
TRIGGER_STEPS = ("select", "cancel", "door", "fault", "recover")  # each fires a trigger of the state machine


class InvariantViolation(AssertionError):
    """Money was created or lost: balances + takings + in flight no longer equal the starting total."""


class ScenarioRunner:
    """Owns the virtual world; the machine (a ``Node``) comes and goes with simulated power cycles.

    Between steps, and at every deadline a wait passes, it runs the node's ``tick``: the same duties
    ``python -m firmware`` runs between events (day close, timeouts, key rotation, remote commands).
    """

    def __init__(
        self,
        scenario: Scenario,
        state_dir: Path,
        printer: EventPrinter | None = None,
        link: Link | None = None,
        taps: TapSourceFactory = VirtualTaps,
        link_for: LinkFor | None = None,
    ) -> None:
        self.scenario = scenario
        self.state_dir = state_dir
        self.printer = printer
        self.on_boot: list[Callable[[Node], None]] = []
        config = scenario.machine.config
        self.clock = VirtualClock(scenario.start)
        self.taps = taps(self.clock)  # the card reader is hardware: it outlives the controller's power cycles
        self.purses: PurseCards | None = None  # the cards themselves, when they hold the money
        if config.payment.mode == "card":
            sam = simulation_card_master(state_dir)
            self.purses = PurseCards(sam, scenario.machine.config.school.code, scenario.start.date())
        # with a link, a machine reports (and takes commands) from ``start()`` on; others get theirs from link_for
        self.stations = stations_of(scenario, state_dir, link, link_for)
        self.current = self.stations[MAIN_MACHINE]
        self.result = ScenarioResult()
        # each step kind this runner plays itself, by its handler's name; the reporting world adds its own
        self.steps: dict[str, Callable[[Step], None]] = {kind: getattr(self, f"_do_{kind}") for kind in RUNNER_STEPS}
        self.hooks: dict[str, Callable[[Step], None]] = {}  # extra step kinds (e.g. broker: down)
        self.probes: dict[str, Callable[[], Any]] = {}  # extra expect keys (e.g. backend_sales)
        # payment: account: the money at the issuer (None while it cannot be counted: the issuer or the
        # link is down, outcomes wait in the outbox) and one card's balance there; the reporting world's
        self.issuer_money: Callable[[], int | None] | None = None
        self.issuer_balance: Callable[[str], int] | None = None
        for station in self.stations.values():
            self.current = station
            station.node = self._boot()
        self.current = self.stations[MAIN_MACHINE]
        # with issuer-held accounts the reporting world adds their money when it attaches
        self.starting_total = self.money_total() or 0

    # ---- the machine the card holders stand at ---------------------------------------------
    @property
    def machine(self) -> Node:
        return self.current.machine

    @property
    def display(self) -> RecordingDisplay:
        return self.current.display

    @property
    def dispenser(self) -> VirtualDispenser:
        return self.current.dispenser

    @property
    def door(self) -> DoorSwitch:
        return self.current.door

    @property
    def link(self) -> Link | None:
        return self.current.link

    def nodes(self) -> list[Node]:
        return [station.machine for station in self.stations.values()]

    def start(self) -> None:
        """Connect the machines when they report, and tell attachments about the first boot (later boots too)."""
        here = self.current
        for station in self.stations.values():
            self.current = station
            self._connect()
        self.current = here

    # ---- lifecycle -------------------------------------------------------------------------
    def _boot(self) -> Node:
        station = self.current
        hardware = Hardware(self.clock, station.display, station.dispenser)
        simulation_term_key(station.state_dir, self.scenario.start.date())
        machine = Node(station.setup, station.state_dir, hardware, link=station.link, events=self._on_event)
        if machine.fresh:  # purse cards are made once; every machine keeps the guardians' controls
            purses = self.purses if station.name == MAIN_MACHINE else None
            issue_cards(machine, self.scenario.cards.values(), purses)
        return machine.start(door_open=station.door.is_open(), connect=False)

    def _connect(self) -> None:
        if self.link is not None and self.link.address is not None:
            self.machine.connect()
        for hook in self.on_boot:
            hook(self.machine)

    def power_cycle(self) -> None:
        """Cut the power (nothing cleaned up, nothing in flight committed) and boot again on the same state dir."""
        crashpoints.set_hook(None)
        self.machine.power_loss()
        self.result.power_cycles += 1
        self._on_event(self.clock.now(), "power_cycle", {})
        self.current.node = self._boot()
        self._connect()

    def close(self) -> None:
        crashpoints.set_hook(None)
        self.taps.close()
        for node in self.nodes():
            node.close()

    # ---- running ---------------------------------------------------------------------------
    def run(self) -> ScenarioResult:
        self.start()
        try:
            for step in self.scenario.steps:
                try:
                    self._step(step)
                except crashpoints.PowerCut as cut:
                    self._on_event(self.clock.now(), "power_cut", {"point": str(cut)})
                    self.power_cycle()
                for node in self.nodes():
                    node.tick()
                self.check_invariant(step)
        finally:
            crashpoints.set_hook(None)
        return self.result

    def money_total(self) -> int | None:
        """The machine's books, plus the cards' purses or the issuer's accounts where the money lives.

        ``None`` while the issuer's accounts cannot be counted (the outcomes wait in the outbox).
        """
        nodes = self.nodes()
        total = sum(node.invariant_total() for node in nodes)
        if self.purses is not None:
            total += self.purses.total([(node.db, node.machine_id) for node in nodes])
        if self.issuer_money is not None:
            at_issuer = self.issuer_money()
            return None if at_issuer is None else total + at_issuer
        return total

    def check_invariant(self, step: Step) -> None:
        total = self.money_total()
        if total is None:  # checked again once the issuer has every outcome
            return
        in_flight = sum(node.books.vends.in_flight() for node in self.nodes())
        if total != self.starting_total or in_flight:
            raise InvariantViolation(
                f"after step {step.index + 1} (line {step.line}): balances + takings = {total}, "
                f"started with {self.starting_total}; in flight {in_flight}"
            )

    def _advance_to(self, moment: datetime) -> None:
        advance(self.machine, self.clock, moment)

    def _step(self, step: Step) -> None:
        handler = self.steps.get(step.kind) or self.hooks.get(step.kind)
        if handler is None:
            raise NotImplementedError(f"line {step.line}: step {step.kind!r} needs a component this run lacks")
        try:
            handler(step)
        except MachineError:  # a trigger its state does not take (`recover` with nothing wrong): the story's mistake
            if step.kind not in TRIGGER_STEPS:
                raise
            state = self.machine.controller.state.value
            raise InputError(self.scenario.source, step.line, f"steps.{step.index}.{step.kind}",
                             f"the machine does not take this in state {state}") from None  # fmt: skip

    def _do_select(self, step: Step) -> None:
        self.machine.controller.dispatch("select", step.value)

    def _do_tap(self, step: Step) -> None:
        value = step.value
        if isinstance(value, UnknownCard):
            name, uid = f"unknown {uid_tail(value.uid)}", value.uid
        elif value in self.scenario.technicians:
            name, uid = value, self.scenario.technicians[value]
        else:
            name, uid = value, self.scenario.cards[value].uid
        tap = self.taps.tap(uid, name)
        if self.purses is not None:
            tap = replace(tap, link=self.purses.link(tap.uid))
        self.machine.controller.present(tap)

    def _do_tear(self, step: Step) -> None:
        self._purses().tear_next(step.value)

    def _do_topup(self, step: Step) -> None:
        uid = self.scenario.cards[step.value.card].uid
        self._purses().topup(uid, step.value.amount, "7-ELEVEN-SIM", self.clock.now())
        self.starting_total += step.value.amount  # money paid in at the store's till

    def _purses(self) -> PurseCards:
        if self.purses is None:
            raise NotImplementedError("this step needs the purse on the card (payment: card)")
        return self.purses

    def _do_machine(self, step: Step) -> None:
        """The card holders walk to another machine: the steps after this act there."""
        self.current = self.stations[step.value]
        self._on_event(self.clock.now(), "machine", {"at": step.value, "id": self.machine.machine_id})

    def _do_cancel(self, step: Step) -> None:
        self.machine.controller.dispatch("cancel")

    def _do_wait(self, step: Step) -> None:
        self._advance_to(self.clock.now() + parse_duration(step.value))

    def _do_at(self, step: Step) -> None:
        self._advance_to(step.time())

    def _do_clock(self, step: Step) -> None:
        """The wall clock set by hand, by NTP or by an RTC reset: it may go back; the books' time does not."""
        self.clock.reset(moment := step.time())
        self._on_event(moment, "clock", {"set": moment.isoformat()})

    def _do_door(self, step: Step) -> None:
        self.door.open = step.value == "open"
        controller = self.machine.controller
        controller.dispatch("door_open" if self.door.open else "door_close")

    def _do_restock(self, step: Step) -> None:
        for slot, count in step.value.items():
            self.dispenser.fill(slot, count)
        self.machine.controller.restock(step.value)

    def _do_jam(self, step: Step) -> None:
        self.dispenser.jam(step.value)

    def _do_empty(self, step: Step) -> None:
        self.dispenser.empty(step.value)

    def _do_fault(self, step: Step) -> None:
        self.machine.controller.dispatch("fault", step.value)

    def _do_recover(self, step: Step) -> None:
        self.machine.controller.dispatch("recover")

    def _do_privacy(self, step: Step) -> None:
        self.machine.controller.show(privacy_notice(self.machine.controller.config))

    def _do_note(self, step: Step) -> None:
        self._on_event(self.clock.now(), "note", {"text": step.value})

    def _do_power(self, step: Step) -> None:
        if step.value == "cycle":
            self.power_cycle()
            return
        point = step.value.cut_at

        def cut(reached: str) -> None:
            if reached == point:
                crashpoints.set_hook(None)
                raise crashpoints.PowerCut(point)

        crashpoints.set_hook(cut)

    def _do_expect(self, step: Step) -> None:
        for key, expected in step.value.checks().items():
            actual = self.observe(key)
            if key == "stock":  # only the slots the step names
                actual = {slot: actual.get(slot) for slot in expected}
            elif key == "balance" and isinstance(expected, dict):
                actual = {name: self.balance_of(self.scenario.cards[name].uid) for name in expected}
            self.check(step.line, key, expected, actual)

    def check(self, line: int, key: str, expected: Any, actual: Any) -> None:
        """One check of the story, kept in the result and shown as an ``expect`` event (a step's own, too)."""
        self.result.expectations.append(outcome := ExpectationResult(line, key, expected, actual))
        shown = {"line": line, "key": key, "ok": outcome.ok, "expected": expected, "actual": actual}
        self._on_event(self.clock.now(), "expect", shown)

    def observe(self, key: str) -> Any:
        """The machine's current value for an ``expect`` key."""
        if key in self.probes:
            return self.probes[key]()
        controller = self.machine.controller
        last = controller.last_transaction
        if key in ("outcome", "reason", "slot"):
            return getattr(last, key) if last else None
        if key == "balance":
            if last is None or last.card_uid is None:
                return None
            return self.balance_of(last.card_uid)
        if key == "display":
            return self.display.text()
        if key == "stock":
            return self.machine.books.inventory.stock()
        if key == "state":
            return controller.state.value
        if key == "outbox":
            return self.machine.books.journal.outbox.depth()
        raise NotImplementedError(f"expect {key!r} needs a component this run lacks (e.g. --broker)")

    def balance_of(self, uid: str) -> int:
        """A card's money where it lives: the machine's wallet, or the purse on the card."""
        if self.purses is not None:
            return self.purses.balance(uid)
        if self.issuer_balance is not None:
            return self.issuer_balance(uid)
        return self.machine.books.wallet.balance(uid).amount

    # ---- events ----------------------------------------------------------------------------
    def _on_event(self, at: datetime, name: str, details: dict[str, Any]) -> None:
        self.result.on_event(at, name, details)
        if name == "refilled":  # the technician's visit: the spirals on the pick list are physically full
            for slot, added in details["refill"].items():
                self.dispenser.fill(slot, self.dispenser.physical.get(slot, 0) + added)
        if self.printer is not None:
            self.printer(at.astimezone(self.scenario.machine.config.zone), name, details)


Attachment = Callable[["ScenarioRunner"], Any]


def run_scenario(
    scenario: Scenario,
    state_dir: Path | None = None,
    printer: EventPrinter | None = None,
    attach: Attachment | None = None,
    taps: TapSourceFactory = VirtualTaps,
) -> ScenarioResult:
    """Run ``scenario`` on ``state_dir`` (a fresh temp dir when None); ``attach`` adds e.g. MQTT reporting."""
    if state_dir is None:
        with tempfile.TemporaryDirectory(prefix="vending-") as tmp:
            return run_scenario(scenario, Path(tmp), printer, attach, taps)
    machine_link = getattr(attach, "machine_link", None)
    link = machine_link(scenario.machine.config.id) if machine_link is not None else None
    runner = ScenarioRunner(scenario, state_dir, printer, link=link, taps=taps, link_for=machine_link)
    detach = attach(runner) if attach else None
    try:
        result = runner.run()
    finally:
        if callable(detach):
            detach()
        journal = runner.machine.books.journal
        runner.result.held, runner.result.next_release = journal.outbox.held(), journal.next_release()
        runner.close()
    return result
