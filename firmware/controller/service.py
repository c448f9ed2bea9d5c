"""What the controller does outside a sale: restock, new settings, the day's close, journal-only facts.

Mixed into the controller (``session.py``): the door-open technician and remote commands
(``firmware.app.commands``) call these, and every one is a durable step of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from firmware.clock import local_day_end
from firmware.config.machine import MachineConfig, MachineSetup
from firmware.controller.machine import SESSION, State
from firmware.domain import Denial, JournalEntry
from firmware.messages import Message
from firmware.ports import Books, GuardianAlerts, SalesPolicy, Technicians


class Service:
    setup: MachineSetup
    config: MachineConfig
    books: Books
    policy: SalesPolicy
    policy_factory: Callable[[MachineSetup], SalesPolicy] | None
    state: State
    technicians: Technicians | None
    alerts: GuardianAlerts | None
    technician_pick: dict[str, int] | None

    def show(self, message: Message) -> None:
        raise NotImplementedError  # the controller's display

    def _cancel(self, reason: str, message: Message) -> None:
        raise NotImplementedError  # the controller ends a session without a sale

    def now(self) -> datetime:
        raise NotImplementedError  # the controller's injected clock (``Timers.now``)

    def emit(self, name: str, **details: Any) -> None:
        raise NotImplementedError

    def tell_guardian(self, uid: str, denial: Denial, txn_id: str) -> None:
        """A refusal a guardian hears of through the school (a limit reached), journaled with it (in its commit)."""
        if self.alerts is None:
            return
        day = self.now().astimezone(self.config.zone).date().isoformat()
        if (alert := self.alerts.after_denial(uid, denial, day)) is not None:
            self.books.journal.append(self.entry("guardian_alert", txn_id, **alert))

    def start_technician_visit(self, *_: object) -> None:
        """A technician's tap: any open session ends, the DEX audit is written, the pick list journaled.

        The pick list is what each slot lacks of its capacity now; the refill is recorded from it when the
        visit ends (``finish_technician_visit``), as a handheld's "filled to par" is.
        """
        if self.state in SESSION:
            self._cancel("door_open", Message("door_open"))
        inventory = self.books.inventory
        slots = [state for slot in inventory.stock() if (state := inventory.get(slot)) is not None]
        pick = {s.slot: s.capacity - s.stock for s in slots if s.stock < s.capacity}
        audit = self.technicians.export_audit(self.now()) if self.technicians is not None else None
        self.journal_only("technician_visit", pick=pick, dex=audit)
        self.technician_pick = pick
        self.show(Message("service.technician", {"slots": len(pick)}))

    def finish_technician_visit(self, *_: object) -> None:
        """The visit ends (a second tap, or the door closed): the slots on the pick list are full again."""
        pick, self.technician_pick = self.technician_pick, None
        if pick is None:
            return  # the door alone: a technician without a card restocks by count (``restock``)
        inventory = self.books.inventory
        with self.books.journal.atomic("stock"):
            for slot in pick:
                state = inventory.get(slot)
                if state is not None:
                    inventory.set_stock(slot, state.capacity)
            self.books.journal.append(self.entry("refilled", None, refill=pick, stock=inventory.stock()))
        self.emit("refilled", refill=pick)

    def restock(self, counts: Mapping[str, int]) -> None:
        """Set slots' fill levels (what a technician does with the door open)."""
        inventory = self.books.inventory
        with self.books.journal.atomic("stock"):
            for slot, count in counts.items():
                inventory.set_stock(slot, count)
            self.books.journal.append(self.entry("restocked", None, counts=dict(counts), stock=inventory.stock()))
        self.emit("restocked", counts=dict(counts))

    def apply_setup(self, setup: MachineSetup) -> None:
        self.setup = setup
        self.config = setup.config
        if self.policy_factory is not None:
            self.policy = self.policy_factory(setup)

    def close_day(self, local_day: str) -> None:
        """End of a trading day: all its held reports go (also when it closes early), then summary and settlement."""
        self.books.journal.release_due(self.now(), until=local_day_end(local_day, self.config.zone))
        self.journal_only("day_closed", day=local_day)
        now, kept = self.now(), self.config.retention
        today, per_card = now.astimezone(self.config.zone).date(), self.config.settlement == "per_card"
        self.books.apply_retention(now, today, kept.records_days, kept.card_days, per_card)

    def take_out_if_jammed(self, slot: str) -> None:
        """After ``jam_limit`` vends in a row from ``slot`` did not drop, the slot leaves sale until enabled again.

        Each buyer got the money back, but the next would meet the same stuck spiral, and a purse card
        that left before its refund is owed it until it comes back; operators disable such a lane
        (docs/reliability.md). The vendor hears it with a jam alert and a stock snapshot.
        """
        limit = self.config.jam_limit
        if limit == 0 or self.books.vends.failed_in_a_row(slot, limit) < limit:
            return
        with self.books.journal.atomic("stock"):
            self.books.inventory.set_enabled(slot, False)
            self.books.journal.append(self.entry("slot_jammed", None, slot=slot, failures=limit))
        self.emit("slot_jammed", slot=slot, failures=limit)

    def journal_only(self, kind: str, *, quiet: bool = False, **data: Any) -> None:
        """One entry in its own transaction, and its event unless ``quiet`` (the machine announcing itself)."""
        with self.books.journal.atomic("journal"):
            self.books.journal.append(self.entry(kind, None, **data))
        if not quiet:
            self.emit(kind, **data)

    def entry(self, kind: str, txn_id: str | None, **data: Any) -> JournalEntry:
        """A journal entry stamped with the injected clock."""
        return JournalEntry(kind, self.now(), txn_id, data)
