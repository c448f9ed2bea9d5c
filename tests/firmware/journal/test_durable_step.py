"""``Database.atomic``: one durable step commits whole, rolls back on an error, and leaves a power cut alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.crashpoints import PowerCut
from firmware.errors import StorageError
from firmware.journal.database import Database


def rows(db: Database) -> list[str]:
    return [key for (key,) in db.conn.execute("SELECT key FROM meta WHERE key LIKE 'k%' ORDER BY key")]


def test_a_step_and_the_steps_nested_in_it_commit_together(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine.db")
    with db.atomic("journal"):
        db.set_meta("k1", "x")
        with db.atomic("journal") as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k2', 'y')")
        assert db.conn.in_transaction, "the nested step joined the outer one"
    assert not db.conn.in_transaction and rows(db) == ["k1", "k2"]


def test_an_error_rolls_the_whole_step_back_tells_the_caches_and_is_raised_as_it_was(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine.db")
    told: list[str] = []
    db.on_rollback.append(lambda: told.append("forget"))
    with pytest.raises(KeyError, match="k9"), db.atomic("journal"):
        db.set_meta("k1", "x")
        with db.atomic("journal"):
            raise KeyError("k9")
    assert rows(db) == [] and told == ["forget"] and not db.conn.in_transaction
    with db.atomic("journal"):  # the next step starts afresh
        db.set_meta("k2", "y")
    assert rows(db) == ["k2"]


def test_a_failed_write_is_a_storage_error_and_changes_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine.db")
    with pytest.raises(StorageError, match="write failed, nothing was changed"), db.atomic("journal"):
        db.set_meta("k1", "x")
        db.conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert rows(db) == []


def test_a_power_cut_is_not_rolled_back_here(tmp_path: Path) -> None:
    """Power loss rolls nothing back on purpose: the caller abandons the connection, and SQLite's WAL
    drops the uncommitted transaction when the file is opened again."""
    db = Database(tmp_path / "machine.db")
    told: list[str] = []
    db.on_rollback.append(lambda: told.append("forget"))
    with pytest.raises(PowerCut), db.atomic("drop"):
        db.set_meta("k1", "x")
        raise PowerCut("drop.before_commit")
    assert told == [] and db.conn.in_transaction
    db.abandon()
    assert rows(Database(tmp_path / "machine.db")) == []
