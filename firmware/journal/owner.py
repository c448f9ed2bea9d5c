"""Whose database a file is: SQLite's ``application_id``, stamped when a party's tools first create the file.

Every tool opens its party's database at a path it is given (``--db``, ``--state-dir``), and SQLite
adds tables to any file it can open: the vendor's report pointed at a machine's state database wrote
the vendor's schema into it and printed an empty table. So each file is claimed before any schema is
written. A new, empty file is stamped with its party's id (the header field SQLite keeps for an
application's file format). A file stamped by another party or another application, or one that is
no SQLite database, is refused, naming it and why, and left as it was. A file made before the stamp
is recognised by tables only its party makes, and stamped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from firmware.errors import VendingError

# 'VM' + party initial + format 1, in SQLite's 32-bit application_id
OWNERS: dict[str, int] = {
    "machine": 0x564D4D01,
    "vendor": 0x564D5601,
    "issuer": 0x564D4901,
    "school": 0x564D5301,
}
NAMES = {"machine": "a machine's state", "vendor": "the vendor's", "issuer": "the issuer's", "school": "the school's"}

# tables (or views) only that party's tools make: a file from before the stamp holds one of these sets
SIGNATURES: dict[str, tuple[frozenset[str], ...]] = {
    "machine": (frozenset({"vends", "journal"}),),
    "vendor": (frozenset({"reports", "sales"}), frozenset({"reports", "machines"})),
    "issuer": (frozenset({"reports", "settlements"}), frozenset({"hotlist_cards"})),
    "school": (frozenset({"students"}), frozenset({"reports", "guardian_alerts", "acked"})),
}


class ForeignDatabase(VendingError):
    """The file at a party's database path is not that party's database; nothing was written to it."""


def claim(conn: sqlite3.Connection, path: Path | str, owner: str, stamp: bool = True) -> None:
    """Refuse unless ``conn``'s file is ``owner``'s database or a new one; with ``stamp``, mark it ``owner``'s.

    Call before writing any schema. ``stamp=False`` only checks (a read-only connection).
    """
    try:
        found = int(conn.execute("PRAGMA application_id").fetchone()[0])
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    except sqlite3.DatabaseError as exc:
        raise ForeignDatabase(f"{path}: not an SQLite database ({exc}); expected {NAMES[owner]} database") from None
    if found == OWNERS[owner]:
        return
    wanted = f"not {NAMES[owner]} database; nothing was changed"
    other = next((party for party, code in OWNERS.items() if code == found), None)
    if other is not None:
        raise ForeignDatabase(f"{path}: {NAMES[other]} database, {wanted}")
    if found:
        raise ForeignDatabase(f"{path}: another application's SQLite file (application_id {found:#x}), {wanted}")
    if names and not any(signature <= names for signature in SIGNATURES[owner]):
        held = ", ".join(sorted(names)[:6]) + (", ..." if len(names) > 6 else "")
        raise ForeignDatabase(f"{path}: holds {held}: {wanted}")
    if stamp:
        conn.execute(f"PRAGMA application_id = {OWNERS[owner]}")


def connect(path: Path, owner: str, **options: Any) -> sqlite3.Connection:
    """A connection to ``owner``'s database at ``path``, claimed before the caller writes anything.

    Refused, the connection is closed: nothing of it is left for the collector to close (and
    checkpoint) at some later moment. Every opener of a party's file goes through here.
    """
    return _claimed(sqlite3.connect(path, **options), path, owner, stamp=True)


@contextmanager
def reading(path: Path, owner: str) -> Iterator[sqlite3.Connection]:
    """``owner``'s database at ``path`` for reading (``mode=ro``): never made, stamped or written, refused alike.

    Closed on leaving, as ``with sqlite3.connect(...)`` does not: a connection is freed only by the
    cyclic collector (its statement cache refers back to it), and the last one to close deletes the
    WAL file it opened, so a leaked reader changes the party's files at some random later moment.
    """
    conn = _claimed(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True), path, owner, stamp=False)
    try:
        yield conn
    finally:
        conn.close()


def _claimed(conn: sqlite3.Connection, path: Path, owner: str, *, stamp: bool) -> sqlite3.Connection:
    try:
        conn.execute("PRAGMA busy_timeout=10000")  # the party's other tools (a publisher, a hotlist) share the file
        claim(conn, path, owner, stamp)
    except BaseException:
        conn.close()
        raise
    return conn
