"""Builds a running controller from a machine config, a state dir and the hardware ports."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware.config.machine import Lockout, MachineSetup, with_lockouts
from firmware.controller.session import Books, Controller, EventSink, Hardware
from firmware.journal.database import Database
from firmware.journal.inventory import Inventory
from firmware.journal.ledger import SqliteJournal
from firmware.journal.vends import VendLedger
from firmware.journal.wallet import Wallet
from firmware.policy.chain import build_policy
from firmware.ports import Reporter, SalesPolicy
from firmware.reporting.keys import load_or_create_key

DB_FILE = "machine.db"
ReporterFactory = Callable[[MachineSetup, Books], Reporter]


@dataclass
class Machine:
    """A controller with the database it owns."""

    controller: Controller
    db: Database
    books: Books
    fresh: bool

    def invariant_total(self) -> int:
        """Card balances + takings + money in flight; must equal the starting total at all times."""
        return self.books.wallet.total() + self.books.vends.takings() + self.books.vends.in_flight()


def open_books(state_dir: Path, setup: MachineSetup,
               reporter: ReporterFactory | None = None) -> tuple[Database, Books, bool]:
    db = Database(state_dir / DB_FILE)
    books = Books(SqliteJournal(db), Wallet(db, setup.config.currency), Inventory(db), VendLedger(db))
    if reporter is not None:
        books.journal.reporter = reporter(setup, books)
    fresh = db.meta("machine_id") is None
    if fresh:
        with db.atomic("stock"):
            db.set_meta("machine_id", setup.config.id)
            books.inventory.seed(setup)
    elif db.meta("machine_id") != setup.config.id:
        raise ValueError(f"{state_dir} holds machine {db.meta('machine_id')}, not {setup.config.id}")
    return db, books, fresh


def build_machine(setup: MachineSetup, state_dir: Path, hardware: Hardware, *, reporter: ReporterFactory | None = None,
                  events: EventSink | None = None, policy: SalesPolicy | None = None) -> Machine:
    """Open (or create) the machine's state and wire the controller; call ``controller.start()`` next."""
    db, books, fresh = open_books(state_dir, setup, reporter)
    stored = db.meta("lockouts")
    if stored is not None:  # a remote set_lockout outlives a restart
        setup = with_lockouts(setup, [Lockout.model_validate(spec) for spec in json.loads(stored)])
    controller = Controller(setup, hardware, books, policy or build_policy(setup),
                            load_or_create_key(state_dir), events,
                            policy_factory=None if policy else build_policy)
    return Machine(controller, db, books, fresh)
