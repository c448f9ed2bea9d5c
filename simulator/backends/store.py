"""Receiver-side storage: idempotent on (machine, stream seq), and the highest contiguous seq to ack.

A small port (``ReportStore``) so the same backend runs on SQLite here and on PostgreSQL later.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from firmware import crashpoints
from simulator.backends.party_file import open_owned
from simulator.backends.schemas import PARTY_SCHEMAS

VISIT_KINDS = "('sale', 'denial')"  # the records about a visit: what a school request reads or erases
PAGE_ROWS = 2000  # rows read for one page of a school request; the byte budget usually ends it first


def payload_of(stored: Any) -> dict[str, Any]:
    """A stored payload as a dict: PostgreSQL's JSONB arrives as one, SQLite's TEXT as JSON."""
    return stored if isinstance(stored, dict) else json.loads(stored)


@dataclass(slots=True)
class Report:
    """One sequenced report as received: (machine, seq) is its identity.

    A backend's ``report()`` makes it from the payload; the service then fills in where it came from
    (digest, signature, manifest, text) before the store sees it, so it is built once, not copied.

    ``digest`` (SHA-256 of the signed payload) tells a redelivery from a second, different report at
    the same seq; ``signature`` is the machine's detached JWS, kept so an auditor can check the row.
    A report that came in a batch has the batch's signature, and ``manifest`` is the signed text
    (kept once per batch in ``manifests``): the row's digest is listed there, the signature covers it.
    """

    machine: str
    seq: int
    kind: str
    payload: dict[str, Any]
    extra: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    digest: str = ""
    signature: str = ""
    manifest: str = ""
    text: str = ""  # the payload as the machine signed it, when ``payload`` is exactly that (stored as is)


class ReportStore(Protocol):
    """Where a backend keeps reports: SQLite here; any store with a unique (machine, seq) key will do."""

    def store_many(self, reports: list[Report]) -> dict[str, int]: ...

    def count(self, kind: str | None = None) -> int: ...

    def close(self) -> None: ...


class StoreQueries:
    """Reads both stores answer the same way; ``execute`` takes ``?`` placeholders."""

    conflicts: list[tuple[str, int]]  # a different report at a stored (machine, seq): an incident
    duplicates: int  # redeliveries seen and ignored (at-least-once on the wire)
    # a report's local day, from its time or day field (each store spells JSON access its own way)
    day_of_report = "substr(COALESCE(json_extract(payload, '$.time'), json_extract(payload, '$.day'), ''), 1, 10)"

    def on_day(self) -> str:
        """SQL true for the reports of one local day (a ``?`` placeholder): PostgreSQL prunes to its partition."""
        return f"{self.day_of_report} = ?"

    def json_field(self, name: str) -> str:
        """SQL for one top-level field of a report's payload, as text or number (``name`` is ours, not input)."""
        return f"json_extract(payload, '$.{name}')"

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return int(self.execute("SELECT COUNT(*) FROM reports")[0][0])
        return int(self.execute("SELECT COUNT(*) FROM reports WHERE kind = ?", (kind,))[0][0])

    def acked(self, machine: str) -> int:
        rows = self.execute("SELECT seq FROM acked WHERE machine = ?", (machine,))
        return int(rows[0][0]) if rows else 0

    def heard_of(self, machine: str) -> bool:
        """Whether any report of ``machine`` was ever stored here (what retention forgets leaves its ack)."""
        return bool(self.execute("SELECT 1 FROM acked WHERE machine = ?", (machine,)))

    def record_incident(self, at: str, machine: str | None, topic: str, reason: str, digest: str) -> None:
        self.execute(
            "INSERT INTO incidents (at, machine, topic, reason, digest) VALUES (?, ?, ?, ?, ?)",
            (at, machine, topic[:200], reason[:300], digest),
        )

    def _note_duplicate(self, report: Report, stored_digest: object) -> None:
        """A report at a stored (machine, seq): a redelivery if it is the same, a conflict if not."""
        if stored_digest != report.digest:
            self.conflicts.append((report.machine, report.seq))
        else:
            self.duplicates += 1

    def expire(self, days: int, today: date | None = None) -> tuple[int, dict[str, str]]:
        """Apply a retention period of ``days``: how many reports went, and per machine the day it keeps from.

        Counted back from ``today`` when given (one cutoff for every machine); otherwise from each
        machine's newest record, the data's own clock: a database restored from a backup or made by a
        simulated term is judged by its own dates, never wiped because the wall clock is far past them.
        """
        if today is not None:
            cutoff = (today - timedelta(days=days)).isoformat()
            machines = [str(m) for (m,) in self.execute("SELECT DISTINCT machine FROM reports")]
            return self.purge(cutoff), dict.fromkeys(machines, cutoff)
        rows = self.execute(
            f"SELECT machine, MAX({self.day_of_report}) FROM reports WHERE kind NOT IN ('purged', 'erased') "
            "GROUP BY machine"
        )
        cutoffs = {str(m): (date.fromisoformat(str(day)) - timedelta(days=days)).isoformat() for m, day in rows if day}
        return sum(self.purge(cutoff, machine) for machine, cutoff in cutoffs.items()), cutoffs

    def purge(self, before_day: str, machine: str | None = None) -> int:
        """Forget the reports of days before ``before_day`` (of one machine, or all); returns how many.

        The row stays as a tombstone -- (machine, seq, digest), kind ``purged``, payload ``{}`` -- so
        a late redelivery is still recognised as one and a different report at that seq is still a
        conflict: forgetting never lets an old seq be stored again. Settlement lines of those days
        go too where the store has them (the issuer's).
        """
        which, only = ("", ()) if machine is None else (" AND machine = ?", (machine,))
        purged = self.execute(
            f"UPDATE reports SET kind = 'purged', payload = '{{}}', signature = '' "
            f"WHERE kind != 'purged' AND {self.day_of_report} < ?{which} RETURNING seq",
            (before_day, *only),
        )
        if self._has_settlements():
            self.execute(f"DELETE FROM settlements WHERE day < ?{which}", (before_day, *only))
            self.execute(f"DELETE FROM settlement_days WHERE day < ?{which}", (before_day, *only))
            self.execute(f"DELETE FROM settlement_weeks WHERE substr(days, 1, 10) < ?{which}", (before_day, *only))
            if self.execute("SELECT 1 FROM sqlite_master WHERE name = 'pending_credits'"):  # refunds owed stay, always
                self.execute(f"DELETE FROM pending_credits WHERE given = 1 AND day < ?{which}", (before_day, *only))
                self.execute(  # the purchase days of the credits forgotten with them
                    "DELETE FROM credit_purchases WHERE NOT EXISTS (SELECT 1 FROM pending_credits p "
                    "WHERE p.machine = credit_purchases.machine AND p.txn = credit_purchases.txn)"
                )
        return len(purged)

    def days_held(self, machine: str) -> list[str]:
        """The local days of ``machine`` this store holds sales or refusals of: what a school request pages over."""
        rows = self.execute(
            f"SELECT DISTINCT {self.day_of_report} FROM reports WHERE machine = ? AND kind IN {VISIT_KINDS} ORDER BY 1",
            (machine,),
        )
        return [str(day) for (day,) in rows]

    def records_page(self, machine: str, day: str, after: int, budget: int) -> tuple[list[tuple[Any, ...]], int | None]:
        """(seq, kind, payload) of every sale and refusal at ``machine`` on ``day`` after seq ``after``.

        At most ``budget`` bytes of payload; the second value is the seq to ask after for the next
        page, or None when this page ends the day.
        """
        rows = self.execute(
            f"SELECT seq, kind, payload FROM reports WHERE machine = ? AND kind IN {VISIT_KINDS} "
            f"AND {self.on_day()} AND seq > ? ORDER BY seq LIMIT ?",
            (machine, day, after, PAGE_ROWS),
        )
        page: list[tuple[Any, ...]] = []
        used = 0
        for seq, kind, payload in rows:
            used += len(payload if isinstance(payload, str) else json.dumps(payload)) + 64
            if page and used > budget:
                return page, int(page[-1][0])
            page.append((int(seq), str(kind), payload))
        return page, (int(page[-1][0]) if len(rows) == PAGE_ROWS else None)

    def erase_records(self, machine: str, seqs: tuple[int, ...]) -> list[tuple[int, str]]:
        """Destroy the sales and refusals at these seqs; (seq, kind) of each. Other kinds are never touched.

        Each stays a tombstone (see purge): (machine, seq, digest), no payload. Before this returns, the
        old payloads are gone from the database files too (``forget_from_files``).
        """
        marks = ", ".join("?" * len(seqs))
        found = [
            (int(seq), str(kind))
            for seq, kind in self.execute(
                f"SELECT seq, kind FROM reports WHERE machine = ? AND kind IN {VISIT_KINDS} AND seq IN ({marks}) "
                "ORDER BY seq",
                (machine, *seqs),
            )
        ]
        if found:
            erased = ", ".join("?" * len(found))
            self.execute(
                f"UPDATE reports SET kind = 'erased', payload = '{{}}', signature = '' "
                f"WHERE machine = ? AND seq IN ({erased})",
                (machine, *(seq for seq, _ in found)),
            )
        self.forget_from_files()  # also when asked again after a reader held the log: that finishes it
        return found

    def forget_from_files(self) -> None:
        """Make what was just overwritten unreadable in the store's files (SQLite: its WAL)."""

    def _has_settlements(self) -> bool:
        """Whether this store keeps settlement lines (the issuer's schema)."""
        return False

    def take_conflicts(self) -> list[tuple[str, int]]:
        """(machine, seq) of reports refused since the last call: a different report at a stored seq."""
        conflicts, self.conflicts = self.conflicts, []
        return conflicts


INSERT_REPORT = "INSERT INTO reports (machine, seq, kind, payload, digest, signature) VALUES (?, ?, ?, ?, ?, ?)"


def _row(report: Report) -> tuple[Any, ...]:
    """The reports row: the payload exactly as signed where the report kept it, else canonical JSON."""
    text = report.text or json.dumps(report.payload, sort_keys=True, ensure_ascii=False)
    return (report.machine, report.seq, report.kind, text, report.digest, report.signature)


class SqliteReportStore(StoreQueries):
    """Reports keyed by (machine, seq): a redelivered report is ignored, and the ack only moves forward."""

    def __init__(self, path: Path, owner: str = "vendor") -> None:
        """The ``owner`` party's file (vendor, issuer or school), with that party's tables (``PARTY_SCHEMAS``)."""
        # 0600: the issuer's settlements hold card numbers; SQLite gives its WAL the file's mode
        # secure_delete: freed cells are zeroed, so an erased payload is not left behind
        setup = f"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; {PARTY_SCHEMAS[owner]}"
        self.conn = open_owned(path, owner, setup, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        # machines' liveness (online, offline, last heartbeat) is advisory and rewritten by the next word a
        # machine sends: committed on a connection of its own that does not wait for the disk, so a
        # fleet's status messages do not each hold the writer through an fsync its reports wait behind
        self._advisory = open_owned(path, owner, "PRAGMA synchronous=NORMAL", isolation_level=None,
                                    check_same_thread=False)  # fmt: skip
        self._advisory_lock = threading.Lock()
        self.duplicates = 0  # redeliveries seen and ignored (at-least-once on the wire)
        self.conflicts = []

    def store(
        self,
        machine: str,
        seq: int,
        kind: str,
        payload: dict[str, Any],
        extra: list[tuple[str, tuple[Any, ...]]] | None = None,
    ) -> int:
        """Store once and return the highest contiguous seq now held for ``machine`` (what to ack)."""
        return self.store_many([Report(machine, seq, kind, payload, extra or [])])[machine]

    def store_many(self, reports: list[Report]) -> dict[str, int]:
        """One transaction for a batch; returns, per machine, the highest contiguous seq now held.

        Batching keeps exactly-once intact: a report is acked only after the commit that holds it.
        """
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                fresh = self._fresh(reports)
                self.conn.executemany(INSERT_REPORT, [_row(report) for report in fresh])
                for report in fresh:
                    for sql, params in report.extra:
                        self.conn.execute(sql, params)
                manifests = {(r.signature, r.manifest) for r in reports if r.manifest}
                self.conn.executemany("INSERT OR IGNORE INTO manifests (signature, manifest) VALUES (?, ?)", manifests)
                acked = {machine: self._advance(machine, reports) for machine in {r.machine for r in reports}}
                crashpoints.reached("backend.insert.before_commit")
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            crashpoints.reached("backend.insert.after_commit")
            return acked

    def _fresh(self, reports: list[Report]) -> list[Report]:
        """The reports not held yet, in order; each other one is noted as a redelivery or a conflict.

        One indexed lookup per machine for the seqs the batch carries (not one per report), and a
        seq twice in the same batch (a resend queued behind the original) is judged against the first.
        """
        held: dict[tuple[str, int], str] = {}
        for machine in {report.machine for report in reports}:
            seqs = json.dumps([report.seq for report in reports if report.machine == machine])
            rows = self.conn.execute(
                "SELECT seq, digest FROM reports WHERE machine = ? AND seq IN (SELECT value FROM json_each(?))",
                (machine, seqs),
            )
            held.update(((machine, int(seq)), str(digest)) for seq, digest in rows)
        fresh: list[Report] = []
        for report in reports:
            key = (report.machine, report.seq)
            if key in held:
                self._note_duplicate(report, held[key])
                continue
            held[key] = report.digest
            fresh.append(report)
        return fresh

    def _advance(self, machine: str, batch: list[Report]) -> int:
        """Move the machine's ack over every seq now held after it: this batch's first, then the table."""
        row = self.conn.execute("SELECT seq FROM acked WHERE machine = ?", (machine,)).fetchone()
        acked = int(row[0]) if row else 0
        just_stored = {r.seq for r in batch if r.machine == machine}
        held = "SELECT 1 FROM reports WHERE machine = ? AND seq = ?"
        while acked + 1 in just_stored or self.conn.execute(held, (machine, acked + 1)).fetchone():
            acked += 1
        self.conn.execute("INSERT OR REPLACE INTO acked (machine, seq) VALUES (?, ?)", (machine, acked))
        return acked

    def forget_from_files(self) -> None:
        """Checkpoint the WAL into the database and truncate it: the erased rows' old pages go with it.

        With ``secure_delete`` the main file holds zeros where the payloads were; the WAL still held the
        pages as they were before the erasure until this. A reader in the middle of a read keeps the
        WAL alive for a moment, so this waits for it (a few seconds at most) and fails loudly after.
        """
        for _ in range(100):
            with self._lock:
                busy, _log, _done = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05)
        raise RuntimeError("erased, but a reader kept the write-ahead log open; ask again to finish the erasure")

    def _has_settlements(self) -> bool:
        return bool(self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settlements'"))

    def upsert_machine(self, machine: str, state: str, last_heartbeat: str | None, outbox: int | None) -> None:
        with self._advisory_lock:
            self._advisory.execute(
                "INSERT OR REPLACE INTO machines (machine, state, last_heartbeat, outbox) VALUES (?, ?, ?, ?)",
                (machine, state, last_heartbeat, outbox),
            )

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction of the backend's own (an authorisation, an account order), beside report batches."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._advisory.close()
        self.conn.close()
