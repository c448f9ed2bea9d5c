"""Remote commands from the vendor and the school: signed, checked, applied atomically or refused, answered.

The gate (command_gate.py) decides whether a command may run at all: the right party's signature,
this machine, fresh, in order, within the signer's rate. Each verified command carries an ``id``;
its result is journaled with it, so a command delivered twice (QoS 1) is applied once and answered
once. Only verified commands are remembered by id: an unsigned message cannot claim an id ahead of
the genuine command. Answers go through the outbox like every other report; answers to unverified
messages are capped, so a flood of junk cannot fill the outbox. Commands run on the controller's
thread (the node's ``tick`` drains them).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from firmware.app.command_gate import COMMAND_ID, CommandGate, RateLimit, Refused, SignedCommand
from firmware.app.command_set import AUTHORITY, BY_NAME, validated
from firmware.controller.session import Controller
from firmware.identity.signing import PublicKey, TrustStore
from firmware.journal.books import MachineBooks
from firmware.reporting.inbox import Inbox

log = logging.getLogger(__name__)
UNVERIFIED_ANSWERS_PER_MINUTE = 10  # refusals of unsigned or forged messages that get an answer; the rest: logged


class CommandProcessor:
    """Applies commands to one machine's controller and books."""

    def __init__(self, controller: Controller, books: MachineBooks, authorities: TrustStore) -> None:
        self.controller = controller
        self.books = books
        security = controller.config.security
        self.gate = CommandGate(
            controller.config.id,
            authorities,
            AUTHORITY,
            max_lifetime=timedelta(seconds=security.command_lifetime),
            rate=RateLimit(security.commands_per_minute),
        )
        self._unverified = RateLimit(UNVERIFIED_ANSWERS_PER_MINUTE)
        self.unanswered = 0  # unverified messages refused without an answer (over the cap, or retained)

    def apply_from(self, inbox: Inbox) -> int:
        """Apply every command the inbox received since the last call; how many there were.

        None while a customer is at the machine (``Controller.serving``): they wait in the inbox, since a
        price changed between the selection shown and the tap would charge what the display never said.
        """
        if self.controller.serving:
            return 0
        taken = 0
        while not inbox.commands.empty():
            command = inbox.commands.get_nowait()
            taken += 1
            if command.retained:  # a command is an instruction for now; a retained one would replay on every boot
                self.unanswered += 1
                log.warning("ignored a retained message on the %s command topic", command.name)
                continue
            try:
                self.handle(command.name, command.payload)
            except Exception:  # noqa: BLE001 - a command that breaks its handler must not stop the machine
                log.exception("command %s could not be handled; dropped", command.name)
        return taken

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
        command_id = raw_id if isinstance(raw_id, str) and COMMAND_ID.fullmatch(raw_id) else None
        if command_id is not None:
            previous = self.books.commands.previous(self.gate.answer_key(opened.signer, command_id))
            if previous is not None:
                return previous  # a redelivery: already applied and answered
        counter: tuple[str, int] | None = None
        try:
            self.gate.authorise(name, opened)
            command = validated(name, opened.body)
            if (cosigned := BY_NAME[name].cosigned) is not None:
                cosigned(command, self.gate.authorities, self.controller.config)
            setting = self.gate.counter_setting(opened.signer)
            last = int(self.books.journal.setting(setting) or 0)
            self.gate.check(name, command, opened.signer, self.controller.now(), last)
            counter = (setting, command.counter)  # used from here on, whatever the outcome
            if self.controller.busy:
                raise Refused("a vend is in progress; try again")
            return self._apply(name, command, opened.signer, counter)
        except Refused as refusal:
            return self._answer(command_id, name, ok=False, reason=str(refusal), signer=opened.signer, counter=counter)

    def _apply(self, name: str, command: SignedCommand, signer: PublicKey, counter: tuple[str, int]) -> dict[str, Any]:
        """The command's own change and its answer in one transaction: applied whole, or refused and unchanged."""
        spec = BY_NAME[name]
        with self.books.journal.atomic("stock"):
            spec.apply(self.books, self.controller, command)
            result = self._answer(command.id, name, ok=True, signer=signer, counter=counter)
        self.controller.emit("command", **result, **(spec.told(command) if spec.told else {}))  # once it is on disk
        return result

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
        if not ok:
            self.controller.emit("command", **result)
            log.warning("refused command %s: %s", name, reason)
        return result
