"""Whose PostgreSQL database it is: the vendor's store claims it before it writes any schema.

The SQLite files carry their party in ``application_id`` (firmware/journal/owner.py). A PostgreSQL
database has no such header field, and the vendor's store made its tables in whatever database its
``--db postgresql://...`` named: pointed at another application's database, it added a dozen tables,
views and day partitions beside that application's own. So the first store to open a database stamps
it with a one-row table naming its party; a database stamped by another party, or one holding tables
the vendor's never makes, is refused, named (without its password) and left as it was. A vendor's
database from before the stamp is recognised by its tables, as the SQLite files are, and stamped.
"""

from __future__ import annotations

from typing import Any

from firmware.journal.owner import NAMES, SIGNATURES, ForeignDatabase

OWNER_TABLE = "vending_owner"


def where(conn: Any) -> str:
    """The database's address as an error names it: host, port and name, never the password."""
    info = conn.info
    return f"postgresql://{info.host}:{info.port}/{info.dbname}"


def claim(conn: Any, owner: str) -> None:
    """Refuse unless ``conn``'s database is ``owner``'s or a new one; stamp it ``owner``'s.

    Call inside the transaction that writes the schema, after the lock two stores take to write it.
    """
    wanted = f"not {NAMES[owner]} database; nothing was changed"
    names = {
        str(name)
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    if OWNER_TABLE in names:
        row = conn.execute(f"SELECT party FROM {OWNER_TABLE}").fetchone()
        found = str(row[0]) if row else ""
        if found != owner:
            held = f"{NAMES[found]} database" if found in NAMES else f"stamped {found!r}"
            raise ForeignDatabase(f"{where(conn)}: {held}, {wanted}")
        return
    if names and not any(signature <= names for signature in SIGNATURES[owner]):
        held = ", ".join(sorted(names)[:6]) + (", ..." if len(names) > 6 else "")
        raise ForeignDatabase(f"{where(conn)}: holds {held}: {wanted}")
    conn.execute(f"CREATE TABLE {OWNER_TABLE} (party TEXT NOT NULL)")
    conn.execute(f"INSERT INTO {OWNER_TABLE} (party) VALUES (%s)", (owner,))
