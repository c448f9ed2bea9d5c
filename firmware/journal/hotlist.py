"""The issuer's lost-card list as this machine holds it: names (keyed hashes), its version and its expiry.

Replaced whole by a full list, changed by a delta from the version held; each in one commit with the
journal entry that records the version applied. ``state`` says whether a card can be checked now.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from firmware.identity.pseudonym import hotlist_name
from firmware.journal.held import HeldPush

VERSION, EXPIRES = "hotlist_version", "hotlist_expires"


class HotlistBook(HeldPush):
    version_key = VERSION

    def expires(self) -> datetime | None:
        held = self.db.meta(EXPIRES)
        return datetime.fromisoformat(held) if held else None

    def replace(self, version: int, expires: datetime, names: frozenset[str]) -> None:
        """A full list (joins the current transaction)."""
        self.db.conn.execute("DELETE FROM hotlist")
        self.db.conn.executemany("INSERT INTO hotlist (entry) VALUES (?)", ((name,) for name in names))
        self._stamp(version, expires)

    def change(self, version: int, expires: datetime, add: frozenset[str], remove: frozenset[str]) -> None:
        """A delta from the version held (joins the current transaction)."""
        self.db.conn.executemany("DELETE FROM hotlist WHERE entry = ?", ((name,) for name in remove))
        self.db.conn.executemany("INSERT OR IGNORE INTO hotlist (entry) VALUES (?)", ((name,) for name in add))
        self._stamp(version, expires)

    def _stamp(self, version: int, expires: datetime) -> None:
        self.stamp(version)
        self.db.set_meta(EXPIRES, expires.isoformat())

    def listed(self, name: str) -> bool:
        return self.db.conn.execute("SELECT 1 FROM hotlist WHERE entry = ?", (name,)).fetchone() is not None

    def state(self, now: datetime) -> str:
        return state_on(self.db.conn, now)


def state_on(conn: sqlite3.Connection, now: datetime) -> str:
    """``current``, ``stale`` (past its expiry) or ``none`` (no list received yet), on any connection to the books."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (EXPIRES,)).fetchone()
    if row is None:
        return "none"
    return "current" if now < datetime.fromisoformat(row[0]) else "stale"


class HotlistCheck:
    """Implements the ``Hotlist`` port: a card's name looked up in the list held, under the stale policy."""

    def __init__(self, book: HotlistBook, key: bytes, refuse_when_stale: bool) -> None:
        self.book = book
        self.key = key
        self.refuse_when_stale = refuse_when_stale

    def verdict(self, uid: str, now: datetime) -> str:
        if self.book.listed(hotlist_name(self.key, uid)):
            return "blocked"  # a listed card is refused even when the list is old: it was lost
        if self.book.state(now) != "current" and self.refuse_when_stale:
            return "unchecked"
        return "clear"
