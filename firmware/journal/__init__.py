"""Durable state in SQLite: the journal, the stored-value wallet, the planogram, vends and the outbox."""

from firmware.journal.books import MachineBooks
from firmware.journal.database import Database
from firmware.journal.outbox import Outbox

__all__ = ["Database", "MachineBooks", "Outbox"]
