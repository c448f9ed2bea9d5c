"""The machine database across upgrades: indexes a vend wrote for a rare read are dropped, the reads still work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from firmware.domain import JournalEntry
from firmware.journal.database import Database
from firmware.journal.ledger import SqliteJournal

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def indexes(db: Database, table: str) -> set[str]:
    rows = db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))
    return {str(name) for (name,) in rows if not str(name).startswith("sqlite_autoindex")}


def test_a_state_dir_made_with_the_journal_time_index_loses_it_and_keeps_its_entries(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine.db")
    journal = SqliteJournal(db)
    with db.atomic():
        journal.append(JournalEntry("note", START, None, {"n": 1}))
    db.conn.execute("CREATE INDEX journal_at ON journal (at)")  # as a state dir made before this release has it
    db.close()
    reopened = Database(tmp_path / "machine.db")
    assert indexes(reopened, "journal") == set()
    assert [entry.data for entry in SqliteJournal(reopened).entries()] == [{"n": 1}]
    reopened.close()


def test_the_retention_prune_drops_exactly_the_entries_before_the_cutoff_without_the_index(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine.db")
    journal = SqliteJournal(db)
    with db.atomic():
        for day in range(10):
            journal.append(JournalEntry("note", START + timedelta(days=day), None, {"day": day}))
    with db.atomic():
        dropped = journal.prune((START + timedelta(days=4)).isoformat())
    assert dropped == 4
    assert [entry.data["day"] for entry in journal.entries()] == list(range(4, 10))
    db.close()
