"""Remote commands from the vendor and the school: signed, checked, applied atomically or refused, answered.

The gate (command_gate.py) decides whether a command may run at all: the right party's signature,
this machine, fresh, in order, within the signer's rate. Each verified command carries an ``id``;
its result is journaled with it, so a command delivered twice (QoS 1) is applied once and answered
once. Only verified commands are remembered by id: an unsigned message cannot claim an id ahead of
the genuine command. Answers go through the outbox like every other report; answers to unverified
messages are capped, so a flood of junk cannot fill the outbox. Commands run on the controller's
thread (the runtime or the scenario runner drains them).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from pydantic import Field, ValidationError

from firmware.app.command_gate import AUTHORITY, COMMAND_ID, CommandGate, RateLimit, Refused, SignedCommand
from firmware.config.machine import Lockout, parse_lockouts, with_lockouts
from firmware.config.source import dotted, first_error
from firmware.controller.session import Controller
from firmware.domain import SlotState
from firmware.identity.signing import PublicKey, TrustStore
from firmware.journal.books import MachineBooks
from firmware.reporting.publisher import OutboxPublisher

log = logging.getLogger(__name__)
LOCKOUTS_SETTING = "lockouts"
UNVERIFIED_ANSWERS_PER_MINUTE = 10  # refusals of unsigned or forged messages that get an answer; the rest: logged


class _Command(SignedCommand):
    pass


class Restock(_Command):
    slots: dict[str, int] = Field(min_length=1)


class SetPrice(_Command):
    slot: str
    price: int = Field(gt=0, le=100_000)


class SlotCommand(_Command):
    slot: str


class SetLockout(_Command):
    lockouts: list[Lockout] = Field(max_length=16)


SCHEMAS: dict[str, type[_Command]] = {
    "restock": Restock,
    "set_price": SetPrice,
    "enable_slot": SlotCommand,
    "disable_slot": SlotCommand,
    "set_lockout": SetLockout,
}
COMMANDS: tuple[str, ...] = tuple(SCHEMAS)
if set(COMMANDS) != set(AUTHORITY):
    raise RuntimeError("every command needs exactly one party with authority over it (command_gate.AUTHORITY)")


def stored_lockouts(books: MachineBooks) -> list[Lockout] | None:
    """The lockout windows a remote ``set_lockout`` left in force, if any (they outlive a restart)."""
    stored = books.journal.setting(LOCKOUTS_SETTING)
    return parse_lockouts(json.loads(stored)) if stored is not None else None


class CommandProcessor:
    """Applies commands to one machine's controller and books."""

    def __init__(self, controller: Controller, books: MachineBooks, authorities: TrustStore) -> None:
        self.controller = controller
        self.books = books
        security = controller.config.security
        self.gate = CommandGate(
            controller.config.id,
            authorities,
            max_lifetime=timedelta(seconds=security.command_lifetime),
            rate=RateLimit(security.commands_per_minute),
        )
        self._unverified = RateLimit(UNVERIFIED_ANSWERS_PER_MINUTE)
        self.unanswered = 0  # unverified messages refused without an answer (over the cap, or retained)

    def apply_from(self, publisher: OutboxPublisher) -> None:
        """Apply every command the publisher received since the last call, then let it send the answers."""
        while not publisher.commands.empty():
            command = publisher.commands.get_nowait()
            if command.retained:  # a command is an instruction for now; a retained one would replay on every boot
                self.unanswered += 1
                log.warning("ignored a retained message on the %s command topic", command.name)
                continue
            try:
                self.handle(command.name, command.payload)
            except Exception:  # noqa: BLE001 - a command that breaks its handler must not stop the machine
                log.exception("command %s could not be handled; dropped", command.name)
        publisher.wake()

    def handle(self, name: str, raw: bytes) -> dict[str, Any] | None:
        """Check and apply one command; the result journaled for publishing, or None if left unanswered."""
        try:
            opened = self.gate.open(name, raw)
        except Refused as refusal:
            if not self._unverified.take("unverified"):
                self.unanswered += 1
                log.warning("refused command %s: %s (not answered: over the cap)", name, refusal)
                return None
            return self._answer(None, name, ok=False, reason=str(refusal))
        raw_id = opened.body.get("id")
        command_id = raw_id if isinstance(raw_id, str) and COMMAND_ID.match(raw_id) else None
        if command_id is not None:
            previous = self.books.commands.previous(self.gate.answer_key(opened.signer, command_id))
            if previous is not None:
                return previous  # a redelivery: already applied and answered
        counter: tuple[str, int] | None = None
        try:
            self.gate.authorise(name, opened)
            command = self._validate(name, opened.body)
            setting = self.gate.counter_setting(opened.signer)
            last = int(self.books.journal.setting(setting) or 0)
            self.gate.check(name, command, opened.signer, self.controller.now(), last)
            counter = (setting, command.counter)  # used from here on, whatever the outcome
            if self.controller.busy:
                raise Refused("a vend is in progress; try again")
            return self._apply(name, command, opened.signer, counter)
        except Refused as refusal:
            return self._answer(command_id, name, ok=False, reason=str(refusal), signer=opened.signer, counter=counter)

    def _validate(self, name: str, body: dict[str, Any]) -> _Command:
        try:
            return SCHEMAS[name].model_validate(body, by_alias=True, by_name=False)  # the wire names only
        except ValidationError as exc:
            loc, reason = first_error(exc)
            raise Refused(f"{dotted(loc) or 'payload'}: {reason}") from None

    def _slot(self, slot: str) -> SlotState:
        state = self.books.inventory.get(slot)
        if state is None:
            raise Refused(f"unknown slot {slot!r}")
        return state

    def _apply(self, name: str, command: _Command, signer: PublicKey, counter: tuple[str, int]) -> dict[str, Any]:
        inventory = self.books.inventory
        with self.books.journal.atomic("stock"):
            if isinstance(command, Restock):
                for slot, count in command.slots.items():
                    state = self._slot(slot)
                    if not 0 <= count <= state.capacity:
                        raise Refused(f"slots.{slot}: count {count} is outside 0..{state.capacity}")
                for slot, count in command.slots.items():
                    inventory.set_stock(slot, count)
            elif isinstance(command, SetPrice):
                self._slot(command.slot)
                inventory.set_price(command.slot, command.price)
            elif isinstance(command, SlotCommand):
                self._slot(command.slot)
                inventory.set_enabled(command.slot, name == "enable_slot")
            elif isinstance(command, SetLockout):
                self._set_lockouts(command.lockouts)
            return self._answer(command.id, name, ok=True, signer=signer, counter=counter)

    def _set_lockouts(self, lockouts: list[Lockout]) -> None:
        """Persisted with the answer in one transaction, and in force from the next sale."""
        specs = [lockout.model_dump(by_alias=True) for lockout in lockouts]
        self.books.journal.save_setting(LOCKOUTS_SETTING, json.dumps(specs, sort_keys=True))
        self.controller.apply_setup(with_lockouts(self.controller.setup, lockouts))

    def _answer(
        self,
        command_id: str | None,
        name: str,
        ok: bool,
        reason: str | None = None,
        *,
        signer: PublicKey | None = None,
        counter: tuple[str, int] | None = None,
    ) -> dict[str, Any]:
        """Journal the result (and, for a verified command, its id and the signer's counter) in one transaction."""
        result = {"id": command_id, "command": name, "ok": ok, "reason": reason}
        if signer is not None:
            result["by"] = signer.party
        with self.books.journal.atomic("journal"):
            if command_id is not None and signer is not None:
                key = self.gate.answer_key(signer, command_id)
                self.books.commands.remember(key, name, result, self.controller.now().isoformat())
            if counter is not None:
                self.books.journal.save_setting(*map(str, counter))
            self.books.journal.append(self.controller.entry("command", None, **result))
        self.controller.emit("command", **result)
        if not ok:
            log.warning("refused command %s: %s", name, reason)
        return result
