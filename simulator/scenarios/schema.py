"""The scenario file format (a contract, see README): validated with a line number for every error."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from firmware.config.controls import PeriodSpec, school_periods
from firmware.config.machine import HotlistSetup, MachineSetup, PaymentMode, load_machine, with_payment_mode
from firmware.config.source import Loc, Strict, YamlDoc, document_loc, first_error, read_yaml
from firmware.controller.machine import State
from firmware.domain import FIRST_YEAR, LAST_YEAR
from firmware.errors import VendingError
from simulator.backends.accounts import birth_refusal, guardian_refusal
from simulator.scenarios.card_specs import CardSpec, parse_uid
from simulator.scenarios.step_types import (
    ADAPTERS,
    STEP_TYPES,
    Expect,
    next_wall_time,
    parse_clock,
    parse_duration,
)

OUTCOMES = ("vended", "denied", "refunded", "cancelled")
MAIN_MACHINE = "main"  # the scenario's `machine:`; `machines:` names the others (stations.py)
MACHINE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def uid_tail(uid: str) -> str:
    """The last four hex digits of a uid, enough to tell a person which card; never the card number itself."""
    return f"…{uid[-4:]}"


@dataclass(frozen=True)
class Step:
    kind: str
    value: Any
    line: int
    index: int
    at: datetime | None = None  # resolved wall time for "at" and "clock" steps

    def time(self) -> datetime:
        """The wall time an ``at`` or ``clock`` step sets (resolved when the scenario was read)."""
        if self.at is None:
            raise ValueError(f"line {self.line}: a `{self.kind}` step without a time")
        return self.at


@dataclass(frozen=True)
class Scenario:
    path: Path
    source: str
    machine: MachineSetup
    start: datetime
    cards: dict[str, CardSpec]
    steps: tuple[Step, ...]
    others: dict[str, MachineSetup] = field(default_factory=dict)  # `machines:` by name: the same school's
    periods: dict[str, PeriodSpec] | None = None  # `controls:`: the school's periods; its controls are pushed
    technicians: dict[str, str] = field(default_factory=dict)  # route technicians' cards: name -> uid

    def reporting_step(self) -> Step | None:
        """The first step that needs MQTT reporting (a broker or backend to act on, or to observe).

        With the school's pushed controls (``controls:``) that is the first step: the push comes by MQTT.
        """
        if self.periods is not None:
            return self.steps[0]
        return next((step for step in self.steps if _needs_reporting(step)), None)

    def without_reporting(self) -> tuple[Scenario, list[Step]]:
        """The scenario as a run with reporting off plays it, and the steps it leaves out.

        ``broker:``/``backend:`` steps go, and so do the ``outbox``/``backend_sales`` keys of an
        ``expect`` (its other keys are still checked), so ``--broker none`` runs everything it can.
        """
        kept: list[Step] = []
        dropped: list[Step] = []
        for step in self.steps:
            if not _needs_reporting(step):
                kept.append(step)
                continue
            dropped.append(step)
            if step.kind == "expect":
                rest = step.value.model_copy(update=dict.fromkeys(REPORTING_KEYS))
                if rest.checks():
                    kept.append(replace(step, value=rest))
        return replace(self, steps=tuple(kept)), dropped


REPORTING_STEPS = ("broker", "backend", "issuer", "hotlist", "controls", "refund")
REPORTING_KEYS = ("outbox", "backend_sales")


def _needs_reporting(step: Step) -> bool:
    if step.kind in REPORTING_STEPS:
        return True
    return step.kind == "expect" and any(getattr(step.value, key) is not None for key in REPORTING_KEYS)


class ScenarioHead(Strict):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    machine: str
    start: datetime
    payment: PaymentMode | None = None  # overrides the machine config's payment mode
    machines: dict[str, str] = {}  # other machines the cards travel to: name -> config path
    hotlist: Literal["refuse", "allow"] | None = None  # every machine checks the issuer's lost-card list
    # every machine takes the school's pushed guardian controls; the school's periods of the day
    controls: dict[str, PeriodSpec] | None = None
    technicians: dict[str, str] = {}  # route technicians' cards: name -> uid (`tap: name` opens service mode)
    cards: dict[str, CardSpec] = {}

    @field_validator("technicians")
    @classmethod
    def _technician_uids(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: parse_uid(uid) for name, uid in value.items()}

    steps: list[Any] = Field(min_length=1)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: object) -> datetime:
        return aware_moment(value, "start")


def aware_moment(value: object, what: str) -> datetime:
    """An ISO 8601 time with its UTC offset (YAML may have read it as a datetime already), or ``ValueError``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what} must be ISO 8601 with an offset, got {value!r}") from None
    else:
        raise ValueError(f"{what} must be ISO 8601 with an offset, got {value!r}")
    if moment.tzinfo is None:
        raise ValueError(f"{what} needs a UTC offset, e.g. 2026-03-02T10:55:00+08:00")
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"{what} must be in the years {FIRST_YEAR}-{LAST_YEAR}, got {value!r}")
    return moment


def _validate(adapter: TypeAdapter[Any], value: Any, doc: YamlDoc, loc: Loc) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        error_loc, reason = first_error(exc)
        found = document_loc(value, error_loc)  # without a union's tags: ``balance: "abc"`` said ``balance.int``
        inner = tuple(p for p in found if isinstance(p, int) or not any(c in p for c in "[]-"))
        if len(exc.errors()) > 1 and isinstance(value, str | int | bool):
            raise doc.error(loc, f"invalid value {value!r}") from None
        raise doc.error((*loc, *inner), reason) from None


def load_scenario(path: Path, display_name: str | None = None) -> Scenario:
    """Load, validate and cross-check a scenario (cards, slots, times) before anything runs."""
    name = display_name or str(path)
    doc = read_yaml(path, name)
    if not isinstance(doc.data, dict):
        raise doc.error((), "expected a mapping at the top level")
    try:
        head = ScenarioHead.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.error(*first_error(exc)) from None
    machine_path = path.parent / head.machine
    if not machine_path.is_file():
        raise doc.error(("machine",), f"machine config not found: {head.machine}")
    machine = load_machine(machine_path, os.path.normpath(Path(name).parent / head.machine))
    if head.payment is not None:
        machine = with_payment_mode(machine, head.payment)
    machine = _as_head_says(machine, head)
    others = _other_machines(doc, path, name, head, machine)
    _check_unique_uids(doc, head.cards)
    _check_period_limits(doc, head)
    if machine.config.payment.mode == "card":
        for card_name, card in head.cards.items():
            if (problem := card.purse_problem()) is not None:
                raise doc.error(("cards", card_name, *problem[:1]), problem[1])
    _check_accounts(doc, head)
    steps = _steps(doc, head, machine)
    if clash := set(head.technicians) & set(head.cards):
        raise doc.error(("technicians", sorted(clash)[0]), "a card of the run has this name")
    if clash := {uid for uid in head.technicians.values()} & {card.uid for card in head.cards.values()}:
        raise doc.error(("technicians",), f"uid {sorted(clash)[0]} is a paying card of the run")
    return Scenario(path, name, machine, head.start, dict(head.cards), steps, others, head.controls, head.technicians)


def _check_accounts(doc: YamlDoc, head: ScenarioHead) -> None:
    """Each ``account:`` is one the issuer opens and links on the run's first day, held to its rules there.

    Found here with its line: a holder too young, or a guardian that cannot consent (the card's own
    account, a reference that is none, another card of the run that is a minor's), passed
    ``vending check`` and stopped ``vending run`` with a traceback.
    """
    start = head.start.date()
    opened = start.isoformat()
    births = {card.uid: card.account_at_issuer(name, start).born.isoformat() for name, card in head.cards.items()}
    for name, card in head.cards.items():
        if card.account is None:
            continue
        if (refusal := birth_refusal(card.account.born.isoformat(), opened)) is not None:
            raise doc.error(("cards", name, "account", "born"), refusal)
        guardian = card.account.guardian
        if guardian is not None and (refusal := guardian_refusal(card.uid, guardian, births.get, opened)) is not None:
            raise doc.error(("cards", name, "account", "guardian"), refusal)


def _as_head_says(setup: MachineSetup, head: ScenarioHead) -> MachineSetup:
    """The machine as the head asks: checking lost cards (``hotlist:``), taking school controls (``controls:``)."""
    update: dict[str, Any] = {}
    if head.hotlist is not None:
        update["hotlist"] = HotlistSetup(when_stale=head.hotlist)
    if head.controls is not None:
        update["controls"] = "school"
    return replace(setup, config=setup.config.model_copy(update=update)) if update else setup


def _check_period_limits(doc: YamlDoc, head: ScenarioHead) -> None:
    """A period limit names one of the school's periods, which only a ``controls:`` scenario has."""
    try:
        periods = school_periods(head.controls or {})
    except ValueError as exc:
        raise doc.error(("controls",), str(exc)) from None
    names = {period.name for period in periods}
    for card_name, card in head.cards.items():
        for period in card.guardian.period_limits if card.guardian else {}:
            if period not in names:
                why = (
                    f"not one of the school's periods ({', '.join(sorted(names))})"
                    if names
                    else ("period limits come with the school's pushed controls (`controls:` with its periods)")
                )
                raise doc.error(("cards", card_name, "guardian", "period_limits", period), why)


def _other_machines(
    doc: YamlDoc, path: Path, name: str, head: ScenarioHead, machine: MachineSetup
) -> dict[str, MachineSetup]:
    """The machines of ``machines:``, each in the main machine's payment mode; checked like it."""
    others: dict[str, MachineSetup] = {}
    ids = {machine.config.id}
    for other, config_path in head.machines.items():
        loc: Loc = ("machines", other)
        if not MACHINE_NAME.fullmatch(other) or other == MAIN_MACHINE:
            raise doc.error(loc, f"a machine's name is lower-case letters, digits, - and _ (not {MAIN_MACHINE!r})")
        if machine.config.payment.mode == "machine_wallet":
            raise doc.error(loc, "cards travel between machines only with their money: payment: card or account")
        if not (path.parent / config_path).is_file():
            raise doc.error(loc, f"machine config not found: {config_path}")
        setup = load_machine(path.parent / config_path, os.path.normpath(Path(name).parent / config_path))
        if setup.config.id in ids:
            raise doc.error(loc, f"machine id {setup.config.id} is another machine's of this scenario")
        ids.add(setup.config.id)
        setup = with_payment_mode(setup, machine.config.payment.mode)
        others[other] = _as_head_says(setup, head)
    return others


def _check_unique_uids(doc: YamlDoc, cards: dict[str, CardSpec]) -> None:
    seen: dict[str, str] = {}
    for card_name, card in cards.items():
        if card.uid in seen:
            raise doc.error(("cards", card_name, "uid"), f"same uid as card {seen[card.uid]!r}")
        seen[card.uid] = card_name


MODE_STEPS = {"tear": "card", "topup": "card", "issuer": "account"}  # steps that act on one mode's money
MODE_NEEDS = {"card": "the purse on the card (payment: card)", "account": "issuer-held accounts (payment: account)"}


def with_payment(scenario: Scenario, mode: str) -> Scenario:
    """The scenario with its machine paying from ``mode`` (``vending run --payment``).

    ``VendingError`` naming the card that cannot be a purse card (its uid, its profile, its money).
    """
    machine = with_payment_mode(scenario.machine, mode)
    if (step := next((s for s in scenario.steps if MODE_STEPS.get(s.kind, mode) != mode), None)) is not None:
        needs = MODE_NEEDS[MODE_STEPS[step.kind]]
        raise VendingError(f"--payment {mode}: the `{step.kind}` step at line {step.line} needs {needs}")
    if scenario.others and mode == "machine_wallet":
        raise VendingError("--payment machine_wallet: this scenario's cards travel between machines (`machines:`)")
    others = {name: with_payment_mode(setup, mode) for name, setup in scenario.others.items()}
    if mode == "card":
        for card_name, card in scenario.cards.items():
            if (problem := card.purse_problem()) is not None:
                raise VendingError(f"--payment card: card {card_name!r}: {problem[1]}")
    return replace(scenario, machine=machine, others=others)


def _steps(doc: YamlDoc, head: ScenarioHead, machine: MachineSetup) -> tuple[Step, ...]:
    zone = machine.config.zone
    now = head.start
    steps: list[Step] = []
    slots = machine.config.slots
    for index, raw in enumerate(head.steps):
        loc: Loc = ("steps", index)
        if not isinstance(raw, dict) or len(raw) != 1:
            raise doc.error(loc, "each step is a mapping with exactly one key, e.g. `- select: A1`")
        ((kind, value),) = raw.items()
        if kind not in STEP_TYPES:
            raise doc.error((*loc, kind), f"unknown step {kind!r}; known: {', '.join(sorted(STEP_TYPES))}")
        loc = (*loc, kind)
        value = _validate(ADAPTERS[kind], value, doc, loc)
        at_time: datetime | None = None
        if kind == "select" or kind in ("jam", "empty"):
            if value not in slots:
                raise doc.error(loc, f"unknown slot {value!r}; the machine has {', '.join(sorted(slots))}")
        elif kind == "tap" and isinstance(value, str) and value not in (*head.cards, *head.technicians):
            raise doc.error(loc, f"unknown card {value!r}; cards: {', '.join(sorted(head.cards)) or 'none'}")
        elif kind in MODE_STEPS and machine.config.payment.mode != MODE_STEPS[kind]:
            article = "an" if kind.startswith("i") else "a"
            raise doc.error(loc, f"{article} `{kind}` step needs {MODE_NEEDS[MODE_STEPS[kind]]}")
        elif kind == "machine" and value not in (MAIN_MACHINE, *head.machines):
            known = ", ".join([MAIN_MACHINE, *head.machines])
            raise doc.error(loc, f"unknown machine {value!r}; this scenario's machines: {known}")
        elif kind == "hotlist" and head.hotlist is None:
            raise doc.error(
                loc, "a `hotlist` step needs machines that check the lost-card list (hotlist: refuse|allow)"
            )
        elif kind == "controls" and head.controls is None:
            raise doc.error(loc, "a `controls` step needs machines that take the school's controls (controls: periods)")
        elif kind == "controls" and value.card not in head.cards:
            raise doc.error((*loc, "card"), f"unknown card {value.card!r}")
        elif kind == "controls" and (stray := [p for p in value.period_limits if p not in (head.controls or {})]):
            raise doc.error((*loc, "period_limits", stray[0]), "not one of the school's periods")
        elif kind == "hotlist" and (unknown := [c for c in (*value.add, *value.remove) if c not in head.cards]):
            raise doc.error(loc, f"unknown card {unknown[0]!r}; cards: {', '.join(sorted(head.cards)) or 'none'}")
        elif kind == "topup" and value.card not in head.cards:
            raise doc.error((*loc, "card"), f"unknown card {value.card!r}")
        elif kind == "tear" and not 0 <= value <= 64:
            raise doc.error(loc, "tear after 0 (a quick tap: lifted before it is read) to 64 writes")
        elif kind == "restock":
            for slot, count in value.items():
                if slot not in slots:
                    raise doc.error((*loc, slot), f"unknown slot {slot!r}")
                if not 0 <= count <= slots[slot].capacity:
                    raise doc.error((*loc, slot), f"count {count} is outside 0..{slots[slot].capacity}")
        elif kind == "wait":
            try:
                now = now + parse_duration(value)
            except ValueError as exc:
                raise doc.error(loc, str(exc)) from None
            if now.year > LAST_YEAR:
                raise doc.error(loc, f"waits past the year {LAST_YEAR}")
        elif kind == "at":
            try:
                clock = parse_clock(value)
            except ValueError as exc:
                raise doc.error(loc, str(exc)) from None
            try:
                at_time = now = next_wall_time(now, zone, clock, value)
            except ValueError as exc:
                raise doc.error(loc, str(exc)) from None
        elif kind == "clock":  # the wall clock set, even back: the machine's books keep their own time
            try:
                at_time = now = aware_moment(value, "clock")
            except ValueError as exc:
                raise doc.error(loc, str(exc)) from None
        elif kind == "expect":
            _check_expect(doc, loc, value, head, slots)
        elif kind == "power" and not isinstance(value, str):
            from firmware.crashpoints import POINTS

            if value.cut_at not in POINTS:
                raise doc.error((*loc, "cut_at"), f"unknown crash point {value.cut_at!r}")
        steps.append(Step(kind, value, doc.line_of(loc) or 0, index, at_time))
    return tuple(steps)


def _check_expect(doc: YamlDoc, loc: Loc, expect: Expect, head: ScenarioHead, slots: dict[str, Any]) -> None:

    if isinstance(expect.balance, dict):
        for card in expect.balance:
            if card not in head.cards:
                raise doc.error((*loc, "balance", card), f"unknown card {card!r}")
    if expect.slot is not None and expect.slot not in slots:
        raise doc.error((*loc, "slot"), f"unknown slot {expect.slot!r}")
    for slot in expect.stock or {}:
        if slot not in slots:
            raise doc.error((*loc, "stock", slot), f"unknown slot {slot!r}")
    if expect.state is not None and expect.state not in {s.value for s in State}:
        raise doc.error((*loc, "state"), f"unknown state {expect.state!r}")
    if not expect.checks():
        raise doc.error(loc, "an expect step must check at least one thing")
