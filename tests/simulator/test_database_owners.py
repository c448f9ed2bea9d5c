"""One file, one party: a tool pointed at another party's database refuses it and changes nothing.

SQLite adds tables to any file it can open; before the stamp, `vending backend vendor report --db`
on a machine's state database wrote the vendor's schema into it and printed an empty table.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from firmware.errors import StorageError
from firmware.journal.database import Database
from firmware.journal.owner import OWNERS, ForeignDatabase
from simulator.backends.hotlist import HotlistRegistry
from simulator.backends.store import SqliteReportStore
from simulator.school.store import SchoolStore
from tests.conftest import VENDING

Opener = Callable[[Path], Any]
OPENERS: dict[str, tuple[str, Opener]] = {
    "machine books": ("machine", Database),
    "vendor backend": ("vendor", SqliteReportStore),
    "issuer backend": ("issuer", lambda path: SqliteReportStore(path, "issuer")),
    "issuer hotlist": ("issuer", HotlistRegistry),
    "school roster": ("school", SchoolStore),
    "school backend": ("school", lambda path: SqliteReportStore(path, "school")),
}


def _open(name: str, path: Path) -> None:
    OPENERS[name][1](path).close()  # every connection: one left to the collector would checkpoint at random


def _stamp(path: Path) -> int:
    """The file's ``application_id``, read by a connection closed at once: one left to the collector
    would delete the WAL file it opened at some later moment, inside another party's refusal."""
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA application_id").fetchone()[0])


def _state(path: Path) -> tuple[str, ...]:
    """The file's bytes, its WAL's and its mode: what "nothing was changed" means."""
    parts = [path, path.with_name(path.name + "-wal")]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in parts if p.exists()]
    return (*digests, oct(path.stat().st_mode))


@pytest.mark.parametrize("maker", list(OPENERS))
def test_every_other_partys_tool_refuses_the_file_and_leaves_it_as_it_was(tmp_path: Path, maker: str) -> None:
    path = tmp_path / "party.db"
    _open(maker, path)
    owner = OPENERS[maker][0]
    assert _stamp(path) == OWNERS[owner]
    before = _state(path)
    for name, (party, _) in OPENERS.items():
        if party == owner:
            _open(name, path)  # a party's tools share its file (the issuer's hotlist, the school's roster)
            before = _state(path)
            continue
        with pytest.raises(ForeignDatabase, match=f"party.db: .*{owner}.*not .*{party}") as refused:
            _open(name, path)
        assert "nothing was changed" in str(refused.value)
        assert _state(path) == before, f"{name} changed the {owner}'s file it refused"


@pytest.mark.parametrize("name", list(OPENERS))
def test_a_file_that_is_no_database_or_a_directory_is_refused_untouched(tmp_path: Path, name: str) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("my notes, not a database\n" * 100)
    junk.chmod(0o644)
    before = _state(junk)
    with pytest.raises(ForeignDatabase, match="notes.db: not an SQLite database"):
        _open(name, junk)
    assert _state(junk) == before
    with pytest.raises((ForeignDatabase, StorageError), match="directory|Is a directory"):
        _open(name, tmp_path)


@pytest.mark.parametrize("name", list(OPENERS))
def test_a_partys_file_from_before_the_stamp_is_recognised_and_stamped(tmp_path: Path, name: str) -> None:
    path = tmp_path / "old.db"
    _open(name, path)
    sqlite3.connect(path).execute("PRAGMA application_id = 0").connection.close()  # as an older version made it
    _open(name, path)
    owner = OPENERS[name][0]
    assert _stamp(path) == OWNERS[owner]
    for other, (party, _) in OPENERS.items():
        if party != owner:
            sqlite3.connect(path).execute("PRAGMA application_id = 0").connection.close()
            with pytest.raises(ForeignDatabase, match="old.db: holds .*nothing was changed"):
                _open(other, path)


def test_the_vendor_report_pointed_at_a_machines_books_says_so_and_changes_nothing(tmp_path: Path) -> None:
    books = tmp_path / "state" / "machine.db"
    Database(books).conn.close()
    before = _state(books)
    result = subprocess.run(
        [VENDING, "backend", "vendor", "report", "--db", str(books)], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert "machine.db: a machine's state database, not the vendor's database" in result.stderr
    assert _state(books) == before
    status = subprocess.run([VENDING, "status", "--state-dir", str(books.parent)], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr  # the machine's own tools still read it
