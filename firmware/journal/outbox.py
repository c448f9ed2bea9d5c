"""The outbox: reports waiting for their receiver's ack. Every statement on the table lives here.

A report is inserted in the same transaction as the journal entry that causes it (so it exists
exactly when its cause does) and deleted only when its receiving party acknowledged it. Each party's
stream has its own sequence, so an ack covers "everything up to seq N" of one stream.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from firmware import crashpoints
from firmware.domain import STREAMS, OutboundMessage
from firmware.journal.database import stored_json

BUSY_TIMEOUT_MS = 10_000  # the controller may hold the write lock for a while; wait rather than fail


class _Unknown:
    """Not looked up yet."""


UNKNOWN = _Unknown()


SEQ_COUNTER = "seq:"  # + stream: in ``counters``, the highest seq the publisher deleted (acked)


@dataclass(frozen=True, slots=True)
class PendingReport:
    """One outbox row as the publisher sends it."""

    seq: int
    topic: str
    payload: str
    retain: bool


class Outbox:
    """The outbox table on one SQLite connection (the controller's, or the publisher's own)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        # the publisher's connection is used by its worker and by callers asking depth() or flush():
        # one sqlite3 connection must not run two statements at once (a reset cursor reads as no row)
        self.lock = threading.RLock()
        # when the oldest held report is due, known without a query while this connection is the only
        # one holding reports (the machine's): asked on every journal append and every timer poll
        self._next_release: str | None | _Unknown = UNKNOWN

    @classmethod
    def open(cls, db_path: Path) -> Outbox:
        """A connection of its own, for a thread other than the controller's (the publisher)."""
        conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # this connection only deletes what receivers acknowledged: a delete lost in a power cut is a
        # resend the receiver recognises, so it need not wait for the disk while holding the write lock
        # the controller's next debit needs (the controller's own connection stays synchronous=FULL)
        conn.execute("PRAGMA synchronous=NORMAL")
        return cls(conn)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # ---- the machine's side: inside the journal transaction --------------------------------------
    def last_seq(self, stream: str) -> int:
        """The last seq ``stream`` handed out, as the books keep it.

        Its newest waiting report's; or, when the publisher has deleted every acked one, the highest it
        recorded in the same transaction as the deletion.
        """
        row = self.conn.execute(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM outbox WHERE stream = ?), 0), "
            "COALESCE((SELECT value FROM counters WHERE name = ?), 0))",
            (stream, f"{SEQ_COUNTER}{stream}"),
        ).fetchone()
        return int(row[0])

    def enqueue(self, message: OutboundMessage, seq: int, created_at: str) -> None:
        """Insert one report with its stream's next ``seq``; the caller's transaction commits it."""
        payload = {**message.payload, "seq": seq}
        self.conn.execute(
            "INSERT INTO outbox (stream, seq, topic, payload, retain, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                message.stream,
                seq,
                message.topic,
                stored_json(payload),
                int(message.retain),
                created_at,
            ),
        )
        crashpoints.reached("outbox.insert")

    def hold(self, message: OutboundMessage, release_at: str) -> None:
        """Keep a report unnumbered until ``release_at`` (UTC ISO time); the caller's transaction commits it.

        A rollback leaves the cached due time too early at worst (one empty release pass), never too late.
        """
        known = self._next_release
        if not isinstance(known, _Unknown):
            self._next_release = release_at if known is None else min(known, release_at)
        self.conn.execute(
            "INSERT INTO held (stream, topic, payload, retain, release_at) VALUES (?, ?, ?, ?, ?)",
            (
                message.stream,
                message.topic,
                stored_json(message.payload),
                int(message.retain),
                release_at,
            ),
        )

    def take_held(self, now: str) -> list[OutboundMessage]:
        """Remove and return the held reports due by ``now`` (UTC ISO time), inside the caller's transaction."""
        rows = self.conn.execute(
            "SELECT id, stream, topic, payload, retain FROM held WHERE release_at <= ? ORDER BY id", (now,)
        ).fetchall()
        if rows:
            self.conn.execute("DELETE FROM held WHERE release_at <= ?", (now,))
        self._next_release = UNKNOWN  # asked again next time (a rollback puts the rows back)
        return [
            OutboundMessage(topic, json.loads(payload), bool(retain), stream)
            for _, stream, topic, payload, retain in rows
        ]

    def next_release(self) -> str | None:
        known = self._next_release
        if isinstance(known, _Unknown):
            row = self.conn.execute("SELECT MIN(release_at) FROM held").fetchone()
            known = self._next_release = str(row[0]) if row and row[0] is not None else None
        return known

    def held(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM held").fetchone()[0])

    # ---- the publisher's side -------------------------------------------------------------------
    def depth(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def empty(self) -> bool:
        with self.lock:
            return self.conn.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is None

    def acked_below(self) -> dict[str, int]:
        """Per stream, the seq just below the oldest waiting report (0 when none waits): acked so far."""
        with self.lock:
            oldest = dict(self.conn.execute("SELECT stream, MIN(seq) - 1 FROM outbox GROUP BY stream").fetchall())
        return {stream: int(oldest.get(stream) or 0) for stream in STREAMS}

    def newest(self) -> dict[str, int]:
        """Per stream that has waiting reports, the highest seq."""
        with self.lock:
            rows = self.conn.execute("SELECT stream, MAX(seq) FROM outbox GROUP BY stream").fetchall()
        return {stream: int(seq) for stream, seq in rows}

    def after(self, stream: str, seq: int, limit: int) -> list[PendingReport]:
        """Up to ``limit`` waiting reports of ``stream`` after ``seq``, in order."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT seq, topic, payload, retain FROM outbox WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?",
                (stream, seq, limit),
            ).fetchall()
        return [PendingReport(int(s), topic, payload, bool(retain)) for s, topic, payload, retain in rows]

    def payloads(self, stream: str | None = None) -> list[tuple[str, str]]:
        """(topic, payload) of every waiting report in insertion order (for audits and benchmarks)."""
        with self.lock:
            if stream is None:
                rows = self.conn.execute("SELECT topic, payload FROM outbox ORDER BY id").fetchall()
            else:
                sql = "SELECT topic, payload FROM outbox WHERE stream = ? ORDER BY id"
                rows = self.conn.execute(sql, (stream,)).fetchall()
        return [(str(topic), str(payload)) for topic, payload in rows]

    def delete_acked(self, acked: dict[str, int]) -> int:
        """Delete every report up to each stream's acked seq, in one transaction; returns how many.

        Rolls back on any exception, not only SQLite's: a transaction left open would hold the write
        lock and stop every sale on the machine.
        """
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for stream, seq in acked.items():  # the numbering outlives the rows it numbered (``last_seq``)
                    self.conn.execute(
                        "INSERT INTO counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
                        (f"{SEQ_COUNTER}{stream}", seq),
                    )
                deleted = sum(
                    self.conn.execute("DELETE FROM outbox WHERE stream = ? AND seq <= ?", (stream, seq)).rowcount
                    for stream, seq in acked.items()
                )
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        crashpoints.reached("outbox.delete.after_commit")
        return deleted

    def keep_first(self, count: int) -> None:
        """Drop all but the first ``count`` reports (a benchmark reuses one prepared backlog)."""
        self.conn.execute("DELETE FROM outbox WHERE id > (SELECT MIN(id) + ? - 1 FROM outbox)", (count,))
