"""A party's own SQLite file, opened: private from creation, claimed as that party's, never a URL.

The one way a backend (vendor, issuer, school, the issuer's hotlist) opens its database file.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from firmware.errors import StorageError
from firmware.journal.owner import NAMES, ForeignDatabase, connect

URL_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")  # a URL's scheme, once Path has folded its "//"


def url_refusal(path: Path, whose: str) -> str | None:
    """Why ``path`` is no SQLite file but a database URL, never repeating it (a password), or None.

    ``--db postgresql://user:pw@host/x`` for the issuer or the school, which keep SQLite files only,
    made a folder ``postgresql:`` and a file named after the user and the password.
    """
    if not URL_PREFIX.match(str(path)):
        return None
    scheme = str(path).partition(":")[0]
    return f"--db {scheme}://...: {whose} database is an SQLite file; only the vendor keeps reports in PostgreSQL"


def private_file(path: Path) -> None:
    """The database file exists and is 0600 (owner only) before SQLite opens it; its -wal and -shm follow.

    Created with the mode, never chmod-ed after the fact: there is no moment it is readable by others.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def open_owned(path: Path, owner: str, setup: str = "", **options: Any) -> sqlite3.Connection:
    """``owner``'s database at ``path``: claimed (firmware/journal/owner.py) before anything is written to it.

    A new file is made 0600 before SQLite opens it; a file already there is checked first, so a path
    that names someone else's file is refused with its mode, tables and journal untouched. ``setup``
    (the party's pragmas and tables) runs once it is claimed; a file that cannot be made, opened or set
    up (a full disk, a read-only mount) is a ``StorageError`` naming it, the connection closed.
    """
    if (refusal := url_refusal(path, NAMES[owner])) is not None:
        raise StorageError(refusal)
    if path.is_dir():
        raise ForeignDatabase(f"{path}: a directory, not {NAMES[owner]} database")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        if not existed:
            private_file(path)
        conn = connect(path, owner, **options)
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"{path}: cannot open {NAMES[owner]} database: {exc}") from None
    try:
        if existed:
            private_file(path)
        conn.executescript(setup)
    except (sqlite3.Error, OSError) as exc:
        conn.close()
        raise StorageError(f"{path}: cannot set up {NAMES[owner]} database: {exc}") from None
    return conn
