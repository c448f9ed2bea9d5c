"""bench/vend_sql.py: the recorded SQL of a run of vends, replayed, leaves what the vends left."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.durability import Vending
from bench.vend_sql import raw_frames_per_commit, record, replay_s, wal_frames

TABLES = ("vends", "journal", "outbox", "cards", "slots", "counters")


def contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES}
    finally:
        conn.close()


def test_replaying_the_recorded_statements_leaves_the_database_the_vends_left(tmp_path: Path) -> None:
    vending = Vending(tmp_path / "machine", publish=False)
    vending.vend_many(3)
    snapshot = tmp_path / "before.db"
    statements = record(vending.machine, lambda: vending.vend_many(95), snapshot)  # a restock among them
    after = contents(vending.machine.db.path)
    vending.close()
    assert contents(snapshot) != after, "the snapshot is the database before the recorded vends"
    assert any(sql.startswith("INSERT INTO outbox") for sql, _ in statements), "the outbox's own connection is seen"
    replayed = tmp_path / "replayed.db"
    assert replay_s(snapshot, statements, replayed) > 0
    assert contents(replayed) == after


def test_the_machine_is_given_its_own_connection_back_after_recording(tmp_path: Path) -> None:
    vending = Vending(tmp_path / "machine", publish=False)
    conn = vending.machine.db.conn
    record(vending.machine, lambda: vending.vend_many(1), tmp_path / "before.db")
    assert vending.machine.db.conn is conn and vending.machine.books.journal.outbox.conn is conn
    vending.close()


def test_frames_are_counted_from_the_wal(tmp_path: Path) -> None:
    assert raw_frames_per_commit(tmp_path, commits=20) >= 1.0
    vending = Vending(tmp_path / "machine", publish=False)
    conn = vending.machine.db.conn
    assert wal_frames(conn, lambda: None) == 0
    assert wal_frames(conn, lambda: vending.vend_many(5)) >= 2 * 5, "two commits a vend, a page each at least"
    vending.close()
