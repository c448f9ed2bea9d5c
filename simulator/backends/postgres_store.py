"""The backends' store on PostgreSQL (psycopg 3), with the same contract as the SQLite one.

Unique (machine, seq), a batch per transaction, the highest contiguous seq returned for the ack:
so several backend processes on one database stay exactly-once.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from firmware import crashpoints
from simulator.backends.store import Report, StoreQueries
from simulator.backends.views import view_sql

VENDOR_SCHEMA_PG = """
CREATE TABLE IF NOT EXISTS reports (
    machine TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, payload JSONB NOT NULL,
    digest TEXT NOT NULL DEFAULT '', signature TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (machine, seq)
);
CREATE TABLE IF NOT EXISTS acked (machine TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (signature TEXT PRIMARY KEY, manifest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, machine TEXT, topic TEXT NOT NULL, reason TEXT NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS machines (machine TEXT PRIMARY KEY, state TEXT NOT NULL, last_heartbeat TEXT, outbox BIGINT);
""" + view_sql("postgres")


class PostgresReportStore(StoreQueries):
    """``ReportStore`` on PostgreSQL; ``execute`` takes SQLite-style ``?`` placeholders for shared callers."""

    day_of_report = "substr(COALESCE(payload->>'time', payload->>'day', ''), 1, 10)"

    def json_field(self, name: str) -> str:
        return f"(payload->>'{name}')"

    def __init__(self, dsn: str, schema: str = VENDOR_SCHEMA_PG) -> None:
        import psycopg

        self._psycopg = psycopg
        self.conn = psycopg.connect(dsn, autocommit=True)
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(7417)")  # two backends creating the schema at once
            for statement in filter(str.strip, schema.split(";")):
                self.conn.execute(statement)
        self._lock = threading.Lock()
        self.duplicates = 0
        self.conflicts = []

    def store_many(self, reports: list[Report]) -> dict[str, int]:
        with self._lock:
            with self.conn.transaction():
                for report in reports:
                    inserted = self.conn.execute(
                        "INSERT INTO reports (machine, seq, kind, payload, digest, signature) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (machine, seq) DO NOTHING",
                        (
                            report.machine,
                            report.seq,
                            report.kind,
                            json.dumps(report.payload),
                            report.digest,
                            report.signature,
                        ),
                    ).rowcount
                    if not inserted:
                        stored = self._one(
                            "SELECT digest FROM reports WHERE machine = %s AND seq = %s", (report.machine, report.seq)
                        )
                        self._note_duplicate(report, stored)
                for signature, manifest in sorted({(r.signature, r.manifest) for r in reports if r.manifest}):
                    self.conn.execute(
                        "INSERT INTO manifests (signature, manifest) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (signature, manifest),
                    )
                acked = {machine: self._advance(machine) for machine in sorted({r.machine for r in reports})}
                crashpoints.reached("backend.insert.before_commit")
            crashpoints.reached("backend.insert.after_commit")
            return acked

    def _advance(self, machine: str) -> int:
        """Lock the machine's ack row, then move it to the end of the contiguous run after it."""
        self.conn.execute("INSERT INTO acked (machine, seq) VALUES (%s, 0) ON CONFLICT DO NOTHING", (machine,))
        acked = int(self._one("SELECT seq FROM acked WHERE machine = %s FOR UPDATE", (machine,)))
        if self.conn.execute("SELECT 1 FROM reports WHERE machine = %s AND seq = %s", (machine, acked + 1)).fetchone():
            acked = int(
                self._one(
                    "SELECT MIN(r.seq) FROM reports r WHERE r.machine = %s AND r.seq > %s AND NOT EXISTS "
                    "(SELECT 1 FROM reports n WHERE n.machine = r.machine AND n.seq = r.seq + 1)",
                    (machine, acked),
                )
            )
            self.conn.execute("UPDATE acked SET seq = %s WHERE machine = %s", (acked, machine))
        return acked

    def _one(self, sql: str, params: tuple[object, ...]) -> Any:
        """The single value a query must return (a missing row is a broken invariant, not a None)."""
        row = self.conn.execute(sql, params).fetchone()
        if row is None:
            raise RuntimeError(f"no row for {sql!r}")
        return row[0]

    def upsert_machine(self, machine: str, state: str, last_heartbeat: str | None, outbox: int | None) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO machines (machine, state, last_heartbeat, outbox) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (machine) DO UPDATE SET state = EXCLUDED.state, "
                "last_heartbeat = EXCLUDED.last_heartbeat, outbox = EXCLUDED.outbox",
                (machine, state, last_heartbeat, outbox),
            )

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self.conn.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def forget_from_files(self) -> None:
        """Make erased rows unreadable in the database's files, not only in its tables.

        An UPDATE leaves the old row version in the table's pages, and the WAL holds the rows as they
        were written; statistics may hold sample values. So: fresh statistics, the table and the
        statistics catalog rewritten into new files (VACUUM FULL; the old files are removed), and two
        checkpoints around a WAL switch, after which the segments that held the rows are deleted
        (the server must run with ``wal_recycle = off``, no WAL archive and no replication slot
        keeping them: docs/backends.md).
        """
        with self._lock:
            for statement in (
                "ANALYZE reports",
                "VACUUM FULL reports",
                "VACUUM FULL pg_catalog.pg_statistic",
                "CHECKPOINT",
                "SELECT pg_switch_wal()",
                "CHECKPOINT",
            ):
                self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()
