"""The append-only journal; each entry's reports go into the outbox in the same transaction."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from firmware import crashpoints
from firmware.domain import JournalEntry, OutboundMessage
from firmware.journal.database import Database, stored_json
from firmware.journal.outbox import Outbox
from firmware.ports import Reporter

HEADROOM_KEY = "headroom_probe"
_SHUFFLE = random.SystemRandom()  # the OS's randomness: the order must not be guessable from a seed


def _utc(at: datetime) -> str:
    """One spelling for stored release times, so they compare as text."""
    return at.astimezone(UTC).isoformat(timespec="seconds")


def newest_snapshot_last(due: list[OutboundMessage]) -> list[OutboundMessage]:
    """The window's reports in a random order, and after them only the newest retained one per topic.

    Every retained report of a window (a stock snapshot) describes the same machine at later moments;
    the last held is the newest, and it must be the one the broker keeps.
    """
    newest = {message.topic: message for message in due if message.retain}
    rest = [message for message in due if not message.retain]
    _SHUFFLE.shuffle(rest)
    return rest + list(newest.values())


class NullReporter:
    """Reports nothing: a machine with no back office."""

    def messages_for(self, entry: JournalEntry) -> list[OutboundMessage]:
        return []


class SqliteJournal:
    """Implements the ``Journal`` port on the machine database."""

    def __init__(self, db: Database, reporter: Reporter | None = None) -> None:
        self.db = db
        self.reporter: Reporter = reporter or NullReporter()
        self.outbox = Outbox(db.conn)
        # per stream, the last seq handed out: read once from the books, kept here (a vend numbers one
        # report without a write of its own) and forgotten when a transaction rolls back
        self._numbered: dict[str, int] = {}
        db.on_rollback.append(self._numbered.clear)

    def last_seq(self, stream: str) -> int:
        """The last seq ``stream`` handed out (how many reports it has numbered, ever)."""
        known = self._numbered.get(stream)
        if known is None:
            known = self._numbered[stream] = self.outbox.last_seq(stream)
        return known

    def _number(self, stream: str) -> int:
        """The next seq of ``stream``: the outbox row that carries it commits with the caller's transaction."""
        seq = self._numbered[stream] = self.last_seq(stream) + 1
        return seq

    def atomic(self, step: str = "journal") -> AbstractContextManager[Any]:
        return self.db.atomic(step)

    def append(self, entry: JournalEntry) -> int:
        """Write ``entry`` and the reports it causes; must run inside ``atomic()``."""
        with self.db.atomic("journal") as conn:
            cursor = conn.execute(
                "INSERT INTO journal (at, kind, txn_id, data) VALUES (?, ?, ?, ?)",
                (entry.at.isoformat(), entry.kind, entry.txn_id, stored_json(entry.data)),
            )
            self.release_due(entry.at)  # what is due goes out first: numbering follows the windows
            for message in self.reporter.messages_for(entry):
                release_at = _utc(message.release_at) if message.release_at is not None else self._behind_held(message)
                if release_at is not None:
                    self.outbox.hold(message, release_at)
                else:
                    self.outbox.enqueue(message, self._number(message.stream), entry.at.isoformat())
            return int(cursor.lastrowid or 0)

    def _behind_held(self, message: OutboundMessage) -> str | None:
        """A retained snapshot waits while sales are held: it counts them, so sent now it would time them.

        A restock or a command while a window's sales wait: the stock it shows already lacks what they
        sold, so it goes out with them at the window's end (the command's own result goes at once).
        """
        return self.outbox.next_release() if message.retain else None

    def release_due(self, now: datetime, until: datetime | None = None) -> int:
        """Number and queue the held reports whose window has ended, in a random order (docs/privacy.md).

        Shuffled and numbered only now, so neither the order of the records nor their seq tells the
        receiver who came first within a window. One transaction: a crash releases all or none.
        ``until``: release the windows ending by then although it is earlier (a day's close).
        """
        due_at = self.outbox.next_release()
        if due_at is None or due_at > (limit := _utc(until or now)):
            return 0  # nothing due: no transaction at all (the serve loop polls often, a vend twice)
        with self.db.atomic("journal"):
            due = newest_snapshot_last(self.outbox.take_held(limit))
            for message in due:
                self.outbox.enqueue(message, self._number(message.stream), now.isoformat())
            if due:
                crashpoints.reached("outbox.release")
        return len(due)

    def next_release(self) -> datetime | None:
        """When the oldest held report is due (the controller's timer wakes the machine for it)."""
        due = self.outbox.next_release()
        return datetime.fromisoformat(due) if due is not None else None

    def entries(self) -> Iterator[JournalEntry]:
        rows = self.db.conn.execute("SELECT at, kind, txn_id, data FROM journal ORDER BY id").fetchall()
        for at, kind, txn_id, data in rows:
            yield JournalEntry(kind, datetime.fromisoformat(at), txn_id, json.loads(data))

    def latest_at(self) -> datetime | None:
        """The time of the newest entry: the latest time the books hold (None for empty books)."""
        row = self.db.conn.execute("SELECT at FROM journal ORDER BY id DESC LIMIT 1").fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def next_txn_id(self, machine_id: str) -> str:
        """A transaction id made once, durably, inside the current transaction (never per retry).

        Random, not counted: the vendor sees it, and a counter would tell it the order of visits
        that the release window shuffles (docs/privacy.md).
        """
        return f"{machine_id}-{os.urandom(8).hex()}"

    def prune(self, before: str) -> int:
        """Drop entries older than ``before`` (ISO time); the books, not the journal, hold what recovery needs."""
        return self.db.conn.execute("DELETE FROM journal WHERE at < ?", (before,)).rowcount

    def save_setting(self, key: str, value: str) -> None:
        self.db.set_meta(key, value)

    def setting(self, key: str) -> str | None:
        return self.db.meta(key)

    def prove_headroom(self, size: int, entry: JournalEntry) -> None:
        """A real write of ``size`` bytes, removed in the same transaction (see ``recheck_storage``)."""
        with self.db.atomic("journal"):
            self.db.set_meta(HEADROOM_KEY, "x" * size)
            self.db.conn.execute("DELETE FROM meta WHERE key = ?", (HEADROOM_KEY,))
            self.append(entry)
