"""Durable state in SQLite: the journal, the stored-value wallet, the planogram and the outbox."""

from firmware.journal.database import Database
from firmware.journal.inventory import Inventory, SlotState
from firmware.journal.ledger import SqliteJournal
from firmware.journal.wallet import Wallet

__all__ = ["Database", "Inventory", "SlotState", "SqliteJournal", "Wallet"]
