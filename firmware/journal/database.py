"""One SQLite file per machine, opened with the durability settings documented in docs/reliability.md.

WAL with ``synchronous=FULL``: a commit is on disk (fsync of the WAL) before the machine acts on it,
so a power cut after a commit never loses it; a crash before a commit loses only that transaction.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import msgspec

from firmware import crashpoints
from firmware.errors import StorageError
from firmware.identity.secretfile import PRIVATE_FILE, private_dir
from firmware.journal.owner import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    uid TEXT PRIMARY KEY, profile TEXT NOT NULL, balance INTEGER NOT NULL CHECK (balance >= 0),
    guardian TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS slots (
    slot TEXT PRIMARY KEY, product TEXT NOT NULL, capacity INTEGER NOT NULL,
    stock INTEGER NOT NULL CHECK (stock >= 0), price INTEGER NOT NULL, enabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vends (
    txn_id TEXT PRIMARY KEY, slot TEXT NOT NULL, product TEXT NOT NULL, price INTEGER NOT NULL,
    uid TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('debited', 'completed', 'refunded')),
    local_day TEXT NOT NULL, at TEXT NOT NULL, profile TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS vends_by_card_day ON vends (uid, local_day);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, txn_id TEXT, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
    payload TEXT NOT NULL, retain INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, UNIQUE (stream, seq)
);
CREATE TABLE IF NOT EXISTS held (
    id INTEGER PRIMARY KEY, stream TEXT NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0, release_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS held_by_release ON held (release_at);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS guardians (uid TEXT PRIMARY KEY, controls TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS card_counters (
    uid TEXT NOT NULL, counter INTEGER NOT NULL, amount INTEGER NOT NULL, balance INTEGER NOT NULL,
    mac TEXT NOT NULL, local_day TEXT NOT NULL, PRIMARY KEY (uid, counter)
);
CREATE TABLE IF NOT EXISTS card_steps (
    txn_id TEXT PRIMARY KEY, uid TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('debit', 'credit')),
    amount INTEGER NOT NULL CHECK (amount > 0), counter INTEGER, at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'unknown')), before INTEGER, bought TEXT
);
CREATE TABLE IF NOT EXISTS account_auths (
    txn_id TEXT PRIMARY KEY, uid TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount > 0),
    local_day TEXT NOT NULL, at TEXT NOT NULL,
    how TEXT NOT NULL DEFAULT 'asking' CHECK (how IN ('asking', 'online', 'offline')),
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'captured', 'void', 'refunded'))
);
CREATE TABLE IF NOT EXISTS account_cards (uid TEXT PRIMARY KEY, profile TEXT NOT NULL, seen TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hotlist (entry TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS school_controls (entry TEXT PRIMARY KEY, controls TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS guardian_alerts (key TEXT PRIMARY KEY, day TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issuer_credits (
    entry TEXT NOT NULL, seq INTEGER NOT NULL, amount INTEGER NOT NULL, bought TEXT, PRIMARY KEY (entry, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credit_attempts (entry TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (entry, seq))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operator_refunds (
    txn_id TEXT PRIMARY KEY, amount INTEGER NOT NULL CHECK (amount > 0), local_day TEXT NOT NULL, at TEXT NOT NULL
);
"""


_STORED_JSON = msgspec.json.Encoder(order="sorted")


def stored_json(value: object) -> str:
    """The JSON text the machine stores (journal data, outbox and held reports): keys sorted, no spaces, UTF-8 kept.

    Every vend stores three of these; msgspec writes them in C, where ``json.dumps(sort_keys=True)``
    walks them in Python. Read back with ``json.loads`` as before; a report's digest is taken over
    this text as stored, so sender and receiver agree whatever its spacing.
    """
    return _STORED_JSON.encode(value).decode("utf-8")


class DurableStep:
    """``Database.atomic``'s context: BEGIN IMMEDIATE on the way in, COMMIT on the way out, ROLLBACK on an error.

    A class rather than a generator: a vend opens eight of these (two commits, the rest nested), and
    a generator-based context manager costs several times more to enter and leave.
    """

    __slots__ = ("_db", "_step", "_outermost")

    def __init__(self, db: Database, step: str) -> None:
        self._db = db
        self._step = step
        self._outermost = False

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        if db._depth:
            db._depth += 1
            return db.conn
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"{db.path}: cannot start a transaction: {exc}") from None
        db._depth, self._outermost = 1, True
        return db.conn

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        db = self._db
        if not self._outermost:
            db._depth -= 1
            return
        failure = error
        try:
            if kind is None:  # still inside the transaction: a crash point's hook may join it
                crashpoints.reached(f"{self._step}.before_commit")
                db.conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - rolled back and raised again below
            failure = exc
        finally:
            db._depth = 0  # whatever happened, this transaction is over
        if failure is None:
            crashpoints.reached(f"{self._step}.after_commit")
        elif isinstance(failure, Exception):  # a PowerCut is not rolled back: power loss would not
            db._rollback()
            if isinstance(failure, sqlite3.Error):
                raise StorageError(f"{db.path}: write failed, nothing was changed: {failure}") from None
            if failure is not error:
                raise failure


class Database:
    """The machine's SQLite connection with explicit, re-entrant transactions."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        try:
            private_dir(path.parent)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))  # 0600 before SQLite opens it
            # another party's file is refused before anything is written; the outbox publisher shares it
            self.conn = connect(path, "machine", isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{path}: cannot open the machine's state database: {exc}") from None
        self._depth = 0
        self.on_rollback: list[Callable[[], None]] = []  # caches that must forget uncommitted writes

    def _migrate(self) -> None:
        """Columns added since a state dir was created (a machine keeps its state across upgrades).

        And indexes dropped, each written twice by every vend (a page in each of its two commits) for
        a rare read that a scan does: ``vends_pending`` (the vends still debited), read only at
        power-on, and ``journal_at``, read only by the retention prune at a day's close. The journal, outbox and
        held tables of a new state dir number their rows without AUTOINCREMENT (whose counter row was
        one more page in each of a vend's two commits); ordering by id is unchanged, and a state dir
        made before keeps its tables as they are.
        """
        for index in ("vends_pending", "journal_at"):
            self.conn.execute(f"DROP INDEX IF EXISTS {index}")
        added = (
            ("commands", "at", "TEXT NOT NULL DEFAULT ''"),
            ("vends", "profile", "TEXT NOT NULL DEFAULT ''"),
            ("card_steps", "before", "INTEGER"),
            ("card_steps", "bought", "TEXT"),
            ("issuer_credits", "bought", "TEXT"),
        )
        for table, column, kind in added:
            columns = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def atomic(self, step: str = "journal") -> DurableStep:
        """One durable step: everything inside commits together or not at all.

        Nested calls join the outer transaction; crash points fire around the outermost commit.
        A ``PowerCut`` is not rolled back here: the caller abandons the connection, as power loss would.
        """
        return DurableStep(self, step)

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        for forget in self.on_rollback:
            forget()

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def abandon(self) -> None:
        """Drop the connection without committing anything in flight (a simulated power cut)."""
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        self.conn.close()
