"""Queries over a machine's database, opened read-only so they are safe while the machine runs.

SQLite's WAL mode lets this reader see the last committed state without blocking the controller's
writes. Nothing here shows a card number: sales are listed by transaction, slot and product only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firmware.errors import VendingError
from firmware.journal.owner import reading
from firmware.journal.vends import TAKINGS_SQL

Row = dict[str, Any]


class NotAStateDir(VendingError):
    """The directory holds no machine database."""


@contextmanager
def read_only(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """The machine database of ``state_dir``, read-only (``mode=ro``); never creates one."""
    path = state_dir / "machine.db"
    if not path.is_file():
        raise NotAStateDir(f"--state-dir {state_dir}: no machine.db here (is it a machine's state dir?)")
    with reading(path, "machine") as conn:
        yield conn


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
    cursor = conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def machine_zone(conn: sqlite3.Connection) -> ZoneInfo | None:
    """The machine's own time zone, as its last start-up recorded it (None for an older state dir)."""
    name = _one(conn, "SELECT value FROM meta WHERE key = 'timezone'")
    try:
        return ZoneInfo(str(name)) if name else None
    except (ValueError, ZoneInfoNotFoundError):
        return None


def local_time(stored: str, zone: ZoneInfo | None) -> str:
    """A stored instant in the machine's local time with its offset (the real clock stores UTC)."""
    if zone is None:
        return stored
    at = datetime.fromisoformat(stored)
    return at.astimezone(zone).isoformat() if at.tzinfo is not None else stored


def _localized(conn: sqlite3.Connection, rows: list[Row]) -> list[Row]:
    zone = machine_zone(conn)
    return [{**row, "time": local_time(str(row["time"]), zone)} for row in rows]


def status(conn: sqlite3.Connection) -> Row:
    """What the machine is and how far its books and reports have got: one object, snake_case keys, real types."""
    waiting = dict(conn.execute("SELECT stream, COUNT(*) FROM outbox GROUP BY stream").fetchall())
    last = conn.execute("SELECT at, kind FROM journal ORDER BY id DESC LIMIT 1").fetchone()
    closed = _one(conn, "SELECT MAX(json_extract(data, '$.day')) FROM journal WHERE kind = 'day_closed'")
    return {
        "machine": _one(conn, "SELECT value FROM meta WHERE key = 'machine_id'"),
        "last_event_kind": last[1] if last else None,
        "last_event_time": local_time(last[0], machine_zone(conn)) if last else None,
        "sales_completed": _one(conn, "SELECT COUNT(*) FROM vends WHERE status = 'completed'"),
        "takings": _one(conn, TAKINGS_SQL),  # as the machine's own money check counts them
        "refunds": _one(conn, "SELECT COUNT(*) FROM vends WHERE status = 'refunded'"),  # vends that did not drop
        "operator_refunds": _one(conn, "SELECT COUNT(*) FROM operator_refunds"),  # signed refund commands
        "operator_refunded": _one(conn, "SELECT COALESCE(SUM(amount), 0) FROM operator_refunds"),
        "vends_in_flight": _one(conn, "SELECT COUNT(*) FROM vends WHERE status = 'debited'"),
        "reports_waiting_vendor": waiting.get("vendor", 0),
        "reports_waiting_issuer": waiting.get("issuer", 0),
        "reports_held_for_release": _one(conn, "SELECT COUNT(*) FROM held"),
        "next_release": local_time(due, machine_zone(conn))
        if (due := _one(conn, "SELECT MIN(release_at) FROM held"))
        else None,
        "last_day_closed": closed,
        "slots_empty": _one(conn, "SELECT COUNT(*) FROM slots WHERE stock = 0"),
        "cards_known": _one(conn, "SELECT COUNT(*) FROM cards"),
    }


STOCK_COLUMNS = ("slot", "product", "stock", "capacity", "price", "enabled")
SALES_COLUMNS = ("time", "txn", "slot", "product", "price", "status", "refunded")
JOURNAL_COLUMNS = ("time", "kind", "txn", "data")


def stock(conn: sqlite3.Connection) -> list[Row]:
    rows = _rows(conn, f"SELECT {', '.join(STOCK_COLUMNS)} FROM slots ORDER BY slot")
    return [{**row, "enabled": bool(row["enabled"])} for row in rows]


def sales(conn: sqlite3.Connection, day: str | None = None) -> list[Row]:
    """Every vend (of ``day``), oldest first: the money record, without the card.

    ``refunded``: what an operator's signed refund gave back on that sale (0: none); the sale itself
    stays as it was, completed at its price, as the card and the vendor saw it.
    """
    where, params = ("WHERE vends.local_day = ?", (day,)) if day else ("", ())
    return _localized(
        conn,
        _rows(
            conn,
            "SELECT vends.at AS time, vends.txn_id AS txn, slot, product, price, status, "
            "COALESCE(operator_refunds.amount, 0) AS refunded FROM vends "
            f"LEFT JOIN operator_refunds USING (txn_id) {where} ORDER BY vends.at, vends.rowid",
            params,
        ),
    )


def journal(conn: sqlite3.Connection, since: str | None = None) -> list[Row]:
    """Journal entries from ``since`` (a day: the machine's local day; a time: compared as instants)."""
    rows = _localized(conn, _rows(conn, "SELECT at AS time, kind, txn_id AS txn, data FROM journal ORDER BY id"))
    rows = [{**row, "data": json.loads(row["data"])} for row in rows]  # an object, not JSON inside a string
    if not since:
        return rows
    if len(since) == 10:
        return [row for row in rows if row["time"][:10] >= since]
    moment = datetime.fromisoformat(since)
    return [row for row in rows if _instant(row["time"], moment) >= moment]


def _instant(stored: str, like: datetime) -> datetime:
    """A stored time, comparable with ``like`` (a naive ``like`` is read in the stored time's own zone)."""
    at = datetime.fromisoformat(stored)
    return at.replace(tzinfo=None) if like.tzinfo is None else at


def reuse_problems(state_dir: Path, machine: str, start: datetime, card_uids: set[str]) -> list[str]:
    """Why a scenario starting at ``start`` should not run on the books in ``state_dir``; none for a new dir.

    Another machine's books, books that already go past the scenario's start (the machine's clock would
    be behind its books: out of order past five minutes), or a wallet with other cards than the
    scenario's (its cards are issued only into a new wallet, so its expectations would be about cards
    the machine does not have).
    """
    if not (state_dir / "machine.db").is_file():
        return []
    with read_only(state_dir) as conn:
        held = _one(conn, "SELECT value FROM meta WHERE key = 'machine_id'")
        if held is not None and held != machine:
            return [f"it holds machine {held}, not {machine}"]
        last = _one(conn, "SELECT at FROM journal ORDER BY id DESC LIMIT 1")  # appended in time order
        uids = {str(uid).upper() for (uid,) in conn.execute("SELECT uid FROM cards")}
    card_uids = {uid.upper() for uid in card_uids}
    problems = []
    if last is not None and datetime.fromisoformat(str(last)) > start:
        problems.append(
            f"its books go up to {last}, after the scenario starts ({start.isoformat()}): the machine would find "
            "its clock behind its books and stop selling until then (docs/reliability.md)"
        )
    if uids != card_uids:
        unknown, missing = len(uids - card_uids), len(card_uids - uids)
        problems.append(
            f"its wallet holds {unknown} card(s) the scenario does not list and lacks {missing} it does "
            "(a scenario's cards are issued only into a new state dir)"
        )
    return problems
