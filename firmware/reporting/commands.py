"""Remote commands from the operator's backend: validated, applied atomically or refused, always answered.

Each command carries an ``id``; the result is journaled with it, so a command delivered twice (QoS 1)
is applied once and answered once. The answer goes through the outbox like every other report.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware.config.source import dotted
from firmware.controller.session import Controller
from firmware.reporting.topics import COMMANDS

log = logging.getLogger(__name__)
MAX_COMMAND_BYTES = 4096


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")


class Restock(_Command):
    slots: dict[str, int] = Field(min_length=1)


class SetPrice(_Command):
    slot: str
    price: int = Field(gt=0, le=100_000)


class SlotCommand(_Command):
    slot: str


class LockoutSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    profiles: list[Literal["student", "staff", "guest"]] = Field(min_length=1)
    categories: list[Literal["drink", "dairy", "snack", "bakery", "stationery"]] = Field(min_length=1)
    start: str = Field(alias="from")
    end: str = Field(alias="to")


class SetLockout(_Command):
    lockouts: list[LockoutSpec] = Field(max_length=16)


SCHEMAS: dict[str, type[_Command]] = {
    "restock": Restock, "set_price": SetPrice, "enable_slot": SlotCommand, "disable_slot": SlotCommand,
    "set_lockout": SetLockout,
}


class Refused(Exception):
    """A command that must change nothing; the message is the reason sent back."""


class CommandProcessor:
    """Applies commands on the controller's thread (the serve loop or the scenario runner drains them)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.db = controller.books.journal.db

    def handle(self, name: str, raw: bytes) -> dict[str, Any]:
        """Validate and apply one command; returns the result that was journaled and will be published."""
        command_id: str | None = None
        try:
            body = self._parse(name, raw)
            command_id = body.get("id") if isinstance(body.get("id"), str) else None
            if command_id is not None and (previous := self._previous(command_id)) is not None:
                return previous  # a redelivery: already applied and answered
            command = self._validate(name, body)
            command_id = command.id
            self._check_state()
            return self._apply(name, command)
        except Refused as refusal:
            return self._answer(command_id, name, ok=False, reason=str(refusal))

    def _parse(self, name: str, raw: bytes) -> dict[str, Any]:
        if name not in SCHEMAS:
            raise Refused(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
        if len(raw) > MAX_COMMAND_BYTES:
            raise Refused(f"payload is larger than {MAX_COMMAND_BYTES} bytes")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(f"payload is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Refused("payload must be a JSON object")
        return body

    def _validate(self, name: str, body: dict[str, Any]) -> _Command:
        try:
            return SCHEMAS[name].model_validate(body)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
            raise Refused(f"{dotted(tuple(first['loc'])) or 'payload'}: {reason}") from None

    def _check_state(self) -> None:
        from firmware.controller.machine import BUSY

        if self.controller.state in BUSY:
            raise Refused("a vend is in progress; try again")

    def _slot(self, slot: str) -> Any:
        state = self.controller.books.inventory.get(slot)
        if state is None:
            raise Refused(f"unknown slot {slot!r}")
        return state

    def _apply(self, name: str, command: _Command) -> dict[str, Any]:
        inventory = self.controller.books.inventory
        with self.controller.books.journal.atomic("stock"):
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
                try:
                    self.controller.set_lockouts([spec.model_dump(by_alias=True) for spec in command.lockouts])
                except ValueError as exc:
                    raise Refused(str(exc)) from None
            return self._answer(command.id, name, ok=True)

    def _answer(self, command_id: str | None, name: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
        result = {"id": command_id, "command": name, "ok": ok, "reason": reason}
        with self.controller.books.journal.atomic("journal"):
            if command_id is not None:
                self.db.conn.execute("INSERT OR IGNORE INTO commands (id, name, result) VALUES (?, ?, ?)",
                                     (command_id, name, json.dumps(result)))
            self.controller.books.journal.append(self.controller._entry("command", None, **result))
        self.controller.emit("command", **result)
        if not ok:
            log.warning("refused command %s: %s", name, reason)
        return result

    def _previous(self, command_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute("SELECT result FROM commands WHERE id = ?", (command_id,)).fetchone()
        return json.loads(row[0]) if row else None
