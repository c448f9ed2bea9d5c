"""Builds a running controller from a machine config, a state dir and the hardware ports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware.app.commands import stored_lockouts
from firmware.config.machine import MachineSetup, with_lockouts
from firmware.controller.records import EventSink, Hardware
from firmware.controller.session import Controller
from firmware.errors import VendingError
from firmware.identity.keys import TermKeyring
from firmware.journal.books import MachineBooks
from firmware.journal.database import Database
from firmware.policy.chain import build_policy
from firmware.ports import Reporter, SalesPolicy

DB_FILE = "machine.db"
ReporterFactory = Callable[[MachineSetup, MachineBooks], Reporter]


@dataclass
class Machine:
    """A controller with the database and the term keyring it owns."""

    controller: Controller
    db: Database
    books: MachineBooks
    fresh: bool
    keyring: TermKeyring

    def invariant_total(self) -> int:
        """Card balances + takings + money in flight; must equal the starting total at all times."""
        return self.books.invariant_total()


def open_books(
    state_dir: Path, setup: MachineSetup, reporter: ReporterFactory | None = None
) -> tuple[Database, MachineBooks, bool]:
    db = Database(state_dir / DB_FILE)
    books = MachineBooks.on(db, setup.config.currency)
    if reporter is not None:
        books.journal.reporter = reporter(setup, books)
    fresh = db.meta("machine_id") is None
    if fresh:
        with db.atomic("stock"):
            db.set_meta("machine_id", setup.config.id)
            books.inventory.seed(setup)
    elif db.meta("machine_id") != setup.config.id:
        held = db.meta("machine_id")
        db.close()
        raise VendingError(f"--state-dir {state_dir} holds machine {held}, not {setup.config.id}; use another dir")
    if db.meta("timezone") != setup.config.zone.key:  # so a reader of the state dir shows local times
        with db.atomic("journal"):
            db.set_meta("timezone", setup.config.zone.key)
    return db, books, fresh


def build_machine(
    setup: MachineSetup,
    state_dir: Path,
    hardware: Hardware,
    *,
    reporter: ReporterFactory | None = None,
    events: EventSink | None = None,
    policy: SalesPolicy | None = None,
) -> Machine:
    """Open (or create) the machine's state and wire the controller; call ``controller.start()`` next.

    The state dir must hold a term key valid today (``TermKeyError`` otherwise): a machine never
    invents its own.
    """
    keyring = TermKeyring(state_dir)
    keyring.check_valid(hardware.clock.now().astimezone(setup.config.zone).date())
    db, books, fresh = open_books(state_dir, setup, reporter)
    lockouts = stored_lockouts(books)
    if lockouts is not None:  # a remote set_lockout outlives a restart
        setup = with_lockouts(setup, lockouts)
    controller = Controller(
        setup,
        hardware,
        books,
        policy or build_policy(setup),
        keyring,
        events,
        policy_factory=None if policy else build_policy,
    )
    return Machine(controller, db, books, fresh, keyring)
