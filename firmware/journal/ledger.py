"""The append-only journal; each entry's reports go into the outbox in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from firmware import crashpoints
from firmware.journal.database import Database
from firmware.ports import JournalEntry, Reporter


class NullReporter:
    """Reports nothing: a machine with no back office."""

    def messages_for(self, entry: JournalEntry) -> list:  # noqa: D102
        return []


class SqliteJournal:
    """Implements the ``Journal`` port on the machine database."""

    def __init__(self, db: Database, reporter: Reporter | None = None) -> None:
        self.db = db
        self.reporter: Reporter = reporter or NullReporter()

    def atomic(self, step: str = "journal") -> AbstractContextManager[object]:
        return self.db.atomic(step)

    def append(self, entry: JournalEntry) -> int:
        """Write ``entry`` and the reports it causes; must run inside ``atomic()``."""
        with self.db.atomic("journal") as conn:
            cursor = conn.execute(
                "INSERT INTO journal (at, kind, txn_id, data) VALUES (?, ?, ?, ?)",
                (entry.at.isoformat(), entry.kind, entry.txn_id, json.dumps(entry.data, sort_keys=True)),
            )
            for message in self.reporter.messages_for(entry):
                seq = self.db.bump(f"seq:{message.stream}")
                payload = {**message.payload, "seq": seq}
                conn.execute(
                    "INSERT INTO outbox (stream, seq, topic, payload, retain, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (message.stream, seq, message.topic, json.dumps(payload, sort_keys=True, ensure_ascii=False),
                     int(message.retain), entry.at.isoformat()),
                )
                crashpoints.reached("outbox.insert")
            return int(cursor.lastrowid or 0)

    def entries(self) -> Iterator[JournalEntry]:
        rows = self.db.conn.execute("SELECT at, kind, txn_id, data FROM journal ORDER BY id").fetchall()
        for at, kind, txn_id, data in rows:
            yield JournalEntry(kind, datetime.fromisoformat(at), txn_id, json.loads(data))

    def next_txn_id(self, machine_id: str) -> str:
        """A transaction id made once, durably, inside the current transaction (never per retry)."""
        return f"{machine_id}-{self.db.bump('txn'):07d}"
