"""Remote commands from the operator's backend: validated, applied atomically or refused, always answered.

Each command carries an ``id``; the result is journaled with it, so a command delivered twice (QoS 1)
is applied once and answered once. The answer goes through the outbox like every other report.
Commands run on the controller's thread (the runtime or the scenario runner drains them).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import Field, ValidationError

from firmware.config.machine import Lockout, parse_lockouts, with_lockouts
from firmware.config.source import Strict, dotted, first_error
from firmware.controller.session import Controller
from firmware.domain import SlotState
from firmware.journal.books import MachineBooks
from firmware.reporting.publisher import OutboxPublisher
from firmware.reporting.topics import MAX_COMMAND_BYTES
from firmware.reporting.wire import WireError, parse_object

log = logging.getLogger(__name__)
LOCKOUTS_SETTING = "lockouts"


class _Command(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")


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


class Refused(Exception):
    """A command that must change nothing; the message is the reason sent back."""


def stored_lockouts(books: MachineBooks) -> list[Lockout] | None:
    """The lockout windows a remote ``set_lockout`` left in force, if any (they outlive a restart)."""
    stored = books.journal.setting(LOCKOUTS_SETTING)
    return parse_lockouts(json.loads(stored)) if stored is not None else None


class CommandProcessor:
    """Applies commands to one machine's controller and books."""

    def __init__(self, controller: Controller, books: MachineBooks) -> None:
        self.controller = controller
        self.books = books

    def apply_from(self, publisher: OutboxPublisher) -> None:
        """Apply every command the publisher received since the last call, then let it send the answers."""
        while not publisher.commands.empty():
            command = publisher.commands.get_nowait()
            try:
                self.handle(command.name, command.payload)
            except Exception:  # noqa: BLE001 - a command that breaks its handler must not stop the machine
                log.exception("command %s could not be handled; dropped", command.name)
        publisher.wake()

    def handle(self, name: str, raw: bytes) -> dict[str, Any]:
        """Validate and apply one command; returns the result that was journaled and will be published."""
        command_id: str | None = None
        try:
            body = self._parse(name, raw)
            command_id = body.get("id") if isinstance(body.get("id"), str) else None
            if command_id is not None and (previous := self.books.commands.previous(command_id)) is not None:
                return previous  # a redelivery: already applied and answered
            command = self._validate(name, body)
            command_id = command.id
            if self.controller.busy:
                raise Refused("a vend is in progress; try again")
            return self._apply(name, command)
        except Refused as refusal:
            return self._answer(command_id, name, ok=False, reason=str(refusal))

    def _parse(self, name: str, raw: bytes) -> dict[str, Any]:
        if name not in SCHEMAS:
            raise Refused(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
        try:
            return parse_object(raw, MAX_COMMAND_BYTES)
        except WireError as exc:
            raise Refused(str(exc)) from None

    def _validate(self, name: str, body: dict[str, Any]) -> _Command:
        try:
            return SCHEMAS[name].model_validate(body)
        except ValidationError as exc:
            loc, reason = first_error(exc)
            raise Refused(f"{dotted(loc) or 'payload'}: {reason}") from None

    def _slot(self, slot: str) -> SlotState:
        state = self.books.inventory.get(slot)
        if state is None:
            raise Refused(f"unknown slot {slot!r}")
        return state

    def _apply(self, name: str, command: _Command) -> dict[str, Any]:
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
            return self._answer(command.id, name, ok=True)

    def _set_lockouts(self, lockouts: list[Lockout]) -> None:
        """Persisted with the answer in one transaction, and in force from the next sale."""
        specs = [lockout.model_dump(by_alias=True) for lockout in lockouts]
        self.books.journal.save_setting(LOCKOUTS_SETTING, json.dumps(specs, sort_keys=True))
        self.controller.apply_setup(with_lockouts(self.controller.setup, lockouts))

    def _answer(self, command_id: str | None, name: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
        result = {"id": command_id, "command": name, "ok": ok, "reason": reason}
        with self.books.journal.atomic("journal"):
            if command_id is not None:
                self.books.commands.remember(command_id, name, result)
            self.books.journal.append(self.controller.entry("command", None, **result))
        self.controller.emit("command", **result)
        if not ok:
            log.warning("refused command %s: %s", name, reason)
        return result
