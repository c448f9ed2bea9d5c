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
from firmware.domain import JournalEntry
from firmware.ports import Books, SalesPolicy


class Service:
    setup: MachineSetup
    config: MachineConfig
    books: Books
    policy: SalesPolicy
    policy_factory: Callable[[MachineSetup], SalesPolicy] | None

    def now(self) -> datetime:
        raise NotImplementedError  # the controller's injected clock (``Timers.now``)

    def emit(self, name: str, **details: Any) -> None:
        raise NotImplementedError

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

    def journal_only(self, kind: str, *, quiet: bool = False, **data: Any) -> None:
        """One entry in its own transaction, and its event unless ``quiet`` (the machine announcing itself)."""
        with self.books.journal.atomic("journal"):
            self.books.journal.append(self.entry(kind, None, **data))
        if not quiet:
            self.emit(kind, **data)

    def entry(self, kind: str, txn_id: str | None, **data: Any) -> JournalEntry:
        """A journal entry stamped with the injected clock."""
        return JournalEntry(kind, self.now(), txn_id, data)
