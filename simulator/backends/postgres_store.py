"""The backends' store on PostgreSQL (psycopg 3), with the same contract as the SQLite one.

Unique (machine, seq), a batch per transaction, the highest contiguous seq returned for the ack:
so several backend processes on one database stay exactly-once.

``reports`` is partitioned by the report's local day (declarative range partitioning, one
partition a day, made when its first report arrives, and a default partition for reports with no
day or of a day already retired). A unique key on a partitioned table must hold the partition key,
so the key is (machine, seq, day): a resend of a report carries the same day and meets its copy
there. Two checks keep (machine, seq) unique across days: a report at or below the machine's
acknowledged seq is already stored (or retired) and never inserted again, and one above it is
checked against every partition's (machine, seq) index in the same transaction (a different report
at a stored seq is a conflict, as on SQLite). Retention drops whole partitions (``purge``): no
UPDATE, no VACUUM; the ack watermark stands for the dropped rows. The dashboard's and reports'
queries filter on ``day`` so the planner prunes to the days asked (docs/scaling.md shows the plans).
"""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from typing import Any

from firmware import crashpoints
from firmware.errors import VendingError
from firmware.journal.owner import ForeignDatabase
from simulator.backends.postgres_owner import claim
from simulator.backends.store import Report, StoreQueries
from simulator.backends.views import view_sql

VENDOR_SCHEMA_PG = """
CREATE TABLE IF NOT EXISTS reports (
    machine TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, payload JSONB NOT NULL,
    digest TEXT NOT NULL DEFAULT '', signature TEXT NOT NULL DEFAULT '', day DATE NOT NULL,
    UNIQUE (machine, seq, day)
) PARTITION BY RANGE (day);
CREATE TABLE IF NOT EXISTS reports_undated PARTITION OF reports DEFAULT;
CREATE INDEX IF NOT EXISTS reports_machine_seq ON reports (machine, seq);
CREATE TABLE IF NOT EXISTS retired (horizon DATE NOT NULL);
CREATE TABLE IF NOT EXISTS acked (machine TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (signature TEXT PRIMARY KEY, manifest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, machine TEXT, topic TEXT NOT NULL, reason TEXT NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS machines (machine TEXT PRIMARY KEY, state TEXT NOT NULL, last_heartbeat TEXT, outbox BIGINT);
""" + view_sql("postgres")


PARTITIONS_LOCK = 7418  # making or dropping day partitions: one backend instance at a time
UNDATED = date(1970, 1, 1)  # a report with no time or day field: kept in the default partition


def report_day(report: Report) -> date:
    """The report's local day (its ``time`` or ``day``), the partition it lives in."""
    text = str(report.payload.get("time") or report.payload.get("day") or "")[:10]
    try:
        return date.fromisoformat(text)
    except ValueError:
        return UNDATED


def partition(day: date) -> str:
    return f"reports_d{day:%Y%m%d}"


class PostgresReportStore(StoreQueries):
    """``ReportStore`` on PostgreSQL; ``execute`` takes SQLite-style ``?`` placeholders for shared callers."""

    day_of_report = "substr(COALESCE(payload->>'time', payload->>'day', ''), 1, 10)"

    def on_day(self) -> str:
        return "day = CAST(? AS date)"  # the partition key itself: the planner reads only that day's partition

    def json_field(self, name: str) -> str:
        return f"(payload->>'{name}')"

    def __init__(self, dsn: str, schema: str = VENDOR_SCHEMA_PG) -> None:
        import psycopg

        self._psycopg = psycopg
        try:
            self.conn = psycopg.connect(dsn, autocommit=True)
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # its first line; never the DSN
            # (a password): a DSN libpq cannot parse (ProgrammingError) was a traceback that quoted it whole
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = reason.replace(dsn, "(the --db given)")
            raise VendingError(f"--db: cannot connect to PostgreSQL: {reason}") from None
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(7417)")  # two backends creating the schema at once
                claim(self.conn, "vendor")  # another application's database is refused before any schema
                for statement in filter(str.strip, schema.split(";")):
                    self.conn.execute(statement)
        except ForeignDatabase:
            self.conn.close()
            raise
        self._lock = threading.Lock()
        self._made: set[date] = set()  # day partitions this process made or found (saves the DDL round trip)
        self.duplicates = 0
        self.conflicts = []

    def store_many(self, reports: list[Report]) -> dict[str, int]:
        with self._lock:
            days = [report_day(report) for report in reports]
            with self.conn.transaction():
                self._partitions(set(days))
                # every machine's ack row locked first, in one order: two instances never interleave on one
                # machine, so the check across partitions below and the insert are one step
                machines = sorted({r.machine for r in reports})
                acked = {machine: self._lock_ack(machine) for machine in machines}
                for report, day in zip(reports, days, strict=True):
                    self._insert(report, day, acked[report.machine])
                for signature, manifest in sorted({(r.signature, r.manifest) for r in reports if r.manifest}):
                    self.conn.execute(
                        "INSERT INTO manifests (signature, manifest) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (signature, manifest),
                    )
                acked = {machine: self._advance(machine, acked[machine]) for machine in machines}
                crashpoints.reached("backend.insert.before_commit")
            crashpoints.reached("backend.insert.after_commit")
            return acked

    def _insert(self, report: Report, day: date, acked: int) -> None:
        """Store one report unless (machine, seq) is taken in any partition, or at or below the ack (retired)."""
        if report.seq > acked:
            inserted = self.conn.execute(
                "INSERT INTO reports (machine, seq, kind, payload, digest, signature, day) "
                "SELECT %s, %s, %s, %s, %s, %s, %s "
                "WHERE NOT EXISTS (SELECT 1 FROM reports WHERE machine = %s AND seq = %s)",
                (
                    report.machine,
                    report.seq,
                    report.kind,
                    json.dumps(report.payload),
                    report.digest,
                    report.signature,
                    day,
                    report.machine,
                    report.seq,
                ),  # fmt: skip
            ).rowcount
            if inserted:
                return
        row = self.conn.execute(
            "SELECT digest FROM reports WHERE machine = %s AND seq = %s", (report.machine, report.seq)
        ).fetchone()
        if row is None:  # acknowledged long ago and its day dropped: a late copy of what was stored
            self.duplicates += 1
            return
        self._note_duplicate(report, row[0])

    def _partitions(self, days: set[date]) -> None:
        """Each day's partition, made once (any instance); a day already retired goes to the default one."""
        new = sorted(day for day in days - self._made if day != UNDATED)
        if not new:
            return
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITIONS_LOCK,))
        horizon = self.conn.execute("SELECT MAX(horizon) FROM retired").fetchone()
        retired = horizon[0] if horizon and horizon[0] else None
        for day in new:
            if retired is None or day >= retired:
                self.conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition(day)} PARTITION OF reports "
                    f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"
                )
            self._made.add(day)

    def partitions(self) -> list[str]:
        """The day partitions that exist, oldest first."""
        with self._lock:
            return self._partition_names()

    def purge(self, before_day: str, machine: str | None = None) -> int:
        """Retention: whole days before ``before_day`` go as partitions, dropped; how many reports went.

        One machine's rows are tombstoned as on SQLite instead (a partition holds every machine's day),
        and so are undated reports of the default partition.
        """
        if machine is not None:
            return super().purge(before_day, machine)
        cutoff = date.fromisoformat(before_day)
        dropped = 0
        with self._lock, self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITIONS_LOCK,))
            self.conn.execute("INSERT INTO retired (horizon) VALUES (%s)", (cutoff,))
            for name in self._partition_names():
                if name < partition(cutoff):
                    dropped += int(self._one(f"SELECT COUNT(*) FROM {name}", ()))
                    self.conn.execute(f"ALTER TABLE reports DETACH PARTITION {name}")
                    self.conn.execute(f"DROP TABLE {name}")
            self._made = {day for day in self._made if day >= cutoff}
        undated = self.execute(
            f"UPDATE reports_undated SET kind = 'purged', payload = '{{}}', signature = '' "
            f"WHERE kind != 'purged' AND {self.day_of_report} < ? RETURNING seq",
            (before_day,),
        )
        return dropped + len(undated)

    def _partition_names(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'reports' AND c.relname LIKE 'reports_d%' "
            "ORDER BY 1"
        ).fetchall()
        return [str(name) for (name,) in rows]

    def _lock_ack(self, machine: str) -> int:
        self.conn.execute("INSERT INTO acked (machine, seq) VALUES (%s, 0) ON CONFLICT DO NOTHING", (machine,))
        return int(self._one("SELECT seq FROM acked WHERE machine = %s FOR UPDATE", (machine,)))

    def _advance(self, machine: str, acked: int) -> int:
        """Move the (locked) ack to the end of the contiguous run after it."""
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
