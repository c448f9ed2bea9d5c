"""What a vend's SQL alone costs, and what its commits write: the floors beside the sustained-vends figure.

The sustained share (bench/durability.py) counts a whole vend against two raw commits. These split
it, by measurement rather than by profile:

- **SQL alone**: every statement a run of vends issued (with its parameters) is recorded, then
  replayed on a copy of the state database as it was before the run, with no controller around it.
  Its share against the same raw commits is what the vend's storage leaves for everything else.
- **WAL frames**: pages a vend's two commits write to the WAL, against the raw commit's, counted with
  automatic checkpoints off over a window of each.
- **raw commit, WAL growing against WAL reused**: SQLite rewrites its WAL in place after the first
  checkpoint, and a commit that does not grow the file is cheaper; the raw limit of a long run is
  mostly such commits, which is why it rises with the number of vends.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.common import raw_commit, raw_commit_samples, raw_database
from firmware.app.node import Node
from firmware.journal.database import Database

WAL_PAGES = 1000  # SQLite's default wal_autocheckpoint: the raw WAL is reused after this many commits
FRAME_WINDOW = 300  # vends (and raw commits) over which WAL frames are counted

Statement = tuple[str, Any]


class StatementLog:
    """Stands in for the machine's connection and records each statement with its parameters."""

    def __init__(self, conn: sqlite3.Connection, log: list[Statement]) -> None:
        self._conn = conn
        self._log = log

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self._log.append((sql, params))
        return self._conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _holders(machine: Node) -> list[Any]:
    """Everything that keeps the machine's connection: the database and the outbox it was handed."""
    return [machine.db, machine.books.journal.outbox]


def record(machine: Node, run: Callable[[], None], snapshot: Path) -> list[Statement]:
    """The statements ``run`` issues on ``machine``'s database, and ``snapshot``: the database before it."""
    conn = machine.db.conn
    conn.execute(f"VACUUM INTO '{snapshot}'")
    log: list[Statement] = []
    for holder in _holders(machine):
        holder.conn = StatementLog(conn, log)
    try:
        run()
    finally:
        for holder in _holders(machine):
            holder.conn = conn
    if any(not isinstance(params, tuple | list | dict) for _, params in log):
        raise RuntimeError("a statement was recorded with parameters the replay cannot pass again")
    return log


def replay_s(snapshot: Path, statements: Iterable[Statement], path: Path) -> float:
    """Seconds to run ``statements`` again on a copy of ``snapshot``, opened with the machine's settings."""
    shutil.copy(snapshot, path)
    database = Database(path)
    conn = database.conn
    started = time.perf_counter()
    for sql, params in statements:
        conn.execute(sql, params).fetchall()
    elapsed = time.perf_counter() - started
    database.close()
    return elapsed


def wal_frames(conn: sqlite3.Connection, act: Callable[[], None]) -> int:
    """WAL frames ``act`` writes on ``conn``, automatic checkpoints off while it runs (then as they were)."""
    every = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    try:
        act()
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.execute(f"PRAGMA wal_autocheckpoint={every}")


def raw_frames_per_commit(directory: Path, commits: int = FRAME_WINDOW) -> float:
    """WAL frames of one raw commit (bench/common.py ``raw_commit`` on ``raw_database``)."""
    conn = raw_database(directory / "raw-frames.db")

    def commit_all() -> None:
        for number in range(commits):
            raw_commit(conn, number)

    frames = wal_frames(conn, commit_all)
    conn.close()
    return frames / commits


def raw_commit_phases_us(directory: Path, commits: int = 3 * WAL_PAGES) -> dict[str, float]:
    """Median raw commit while the WAL file grows (its first ``WAL_PAGES`` commits) and once it is reused."""
    fresh = directory / f"phases-{time.monotonic_ns()}"  # a WAL that starts empty
    fresh.mkdir()
    samples = raw_commit_samples(fresh, commits)
    return {
        "wal_growing_us": round(statistics.median(samples[:WAL_PAGES]) * 1e6, 1),
        "wal_reused_us": round(statistics.median(samples[WAL_PAGES:]) * 1e6, 1),
    }
