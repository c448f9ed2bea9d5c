"""Vend records: one row per debit, settled exactly once as completed or refunded."""

from __future__ import annotations

from datetime import date, datetime

from firmware.domain import VendRecord
from firmware.errors import SettlementError
from firmware.journal.database import Database

PERIOD_WEEKS = 4  # per_card lines cover four ISO weeks (docs/privacy.md: weekly lines pinned 0.7 % over a term)


def settlement_period(local_day: str, weeks: int = PERIOD_WEEKS) -> str:
    """``2026-W09``: the per-card settlement period of a local day, named by its first ISO week.

    Periods are blocks of ``weeks`` ISO weeks of the ISO year (of four: weeks 1-4, 5-8, ...; a week 53
    alone), so every machine agrees on them without talking to each other.
    """
    year, week, _ = date.fromisoformat(local_day).isocalendar()
    return f"{year}-W{(week - 1) // weeks * weeks + 1:02d}"


RECORD_COLUMNS = "txn_id, slot, product, price, uid, status, local_day, profile"
# a card's vends of one local day (uid, local_day) with what it keeps of each: the price less an operator's refund
_KEPT = (
    "SELECT vends.price - COALESCE(operator_refunds.amount, 0) AS kept, vends.at FROM vends "
    "LEFT JOIN operator_refunds ON operator_refunds.txn_id = vends.txn_id "
    "WHERE vends.uid = ? AND vends.local_day = ? AND vends.status != 'refunded'"
)

# the vendor's money: completed sales less what operators refunded on them (the money check and `vending status`)
TAKINGS_SQL = (
    "SELECT (SELECT COALESCE(SUM(price), 0) FROM vends WHERE status = 'completed') - "
    "(SELECT COALESCE(SUM(amount), 0) FROM operator_refunds)"
)


class VendLedger:
    """The vends table: the bridge between a debit and its settlement, and the source of takings."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, record: VendRecord, at: str) -> None:
        self.db.conn.execute(
            "INSERT INTO vends (txn_id, slot, product, price, uid, status, local_day, at, profile) "
            "VALUES (?, ?, ?, ?, ?, 'debited', ?, ?, ?)",
            (
                record.txn_id,
                record.slot,
                record.product,
                record.price,
                record.uid,
                record.local_day,
                at,
                record.profile,
            ),
        )

    def settle(self, txn_id: str, status: str) -> None:
        """Move a debited vend to ``completed`` or ``refunded``; settling twice is a bug, so it fails."""
        cursor = self.db.conn.execute(
            "UPDATE vends SET status = ? WHERE txn_id = ? AND status = 'debited'", (status, txn_id)
        )
        if cursor.rowcount != 1:
            raise SettlementError(f"vend {txn_id} is not awaiting settlement")

    def failed_in_a_row(self, slot: str, limit: int) -> int:
        """How many of ``slot``'s last settled vends, counting back at most ``limit``, were refunded."""
        rows = self.db.conn.execute(
            "SELECT status FROM vends WHERE slot = ? AND status != 'debited' ORDER BY rowid DESC LIMIT ?",
            (slot, limit),
        ).fetchall()
        return next((count for count, (status,) in enumerate(rows) if status != "refunded"), len(rows))

    def get(self, txn_id: str) -> VendRecord | None:
        row = self.db.conn.execute(f"SELECT {RECORD_COLUMNS} FROM vends WHERE txn_id = ?", (txn_id,)).fetchone()
        return VendRecord(*row) if row else None

    def pending(self) -> list[VendRecord]:
        rows = self.db.conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM vends WHERE status = 'debited' ORDER BY at"
        ).fetchall()
        return [VendRecord(*row) for row in rows]

    def spent_on(self, uid: str, local_day: str) -> int:
        """What a card spent on a local day: debited or completed, less what was given back of it.

        A refund (the machine's, or an operator's on a completed sale, whenever it came) gives back the
        allowance of the purchase's day, as the issuer does for an account (docs/payments.md).
        """
        row = self.db.conn.execute(f"SELECT COALESCE(SUM(kept), 0) FROM ({_KEPT})", (uid, local_day)).fetchone()
        return int(row[0])

    def spent_between(self, uid: str, local_day: str, start: datetime, end: datetime) -> int:
        """What a card spent here from ``start`` to ``end`` of a local day (a period limit), as ``spent_on`` counts."""
        rows = self.db.conn.execute(f"SELECT kept, at FROM ({_KEPT})", (uid, local_day)).fetchall()
        # a card's sales of one day on one machine: a handful; their times as the clock wrote them
        return sum(int(kept) for kept, at in rows if start <= datetime.fromisoformat(at) < end)

    def takings(self) -> int:
        """Completed sales less what operators refunded on them (``refund``): the vendor's money."""
        return int(self.db.conn.execute(TAKINGS_SQL).fetchone()[0])

    def made_at(self, txn_id: str) -> datetime | None:
        """When the vend's debit was made (its row's time), if this machine holds it."""
        row = self.db.conn.execute("SELECT at FROM vends WHERE txn_id = ?", (txn_id,)).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def refunded(self, txn_id: str) -> int | None:
        """What an operator refunded on this sale, if anything."""
        row = self.db.conn.execute("SELECT amount FROM operator_refunds WHERE txn_id = ?", (txn_id,)).fetchone()
        return int(row[0]) if row else None

    def grant_refund(self, txn_id: str, amount: int, local_day: str, at: str) -> None:
        """An operator's refund of a completed sale, once (joins the command's transaction)."""
        self.db.conn.execute(
            "INSERT INTO operator_refunds (txn_id, amount, local_day, at) VALUES (?, ?, ?, ?)",
            (txn_id, amount, local_day, at),
        )

    def refunds_on(self, local_day: str) -> int:
        """What operators refunded on a local day (its settlement tells the issuer)."""
        row = self.db.conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM operator_refunds WHERE local_day = ?", (local_day,)
        ).fetchone()
        return int(row[0])

    def in_flight(self) -> int:
        row = self.db.conn.execute("SELECT COALESCE(SUM(price), 0) FROM vends WHERE status = 'debited'").fetchone()
        return int(row[0])

    def daily_totals(self, local_day: str) -> list[tuple[str, int, int]]:
        """Per card: (uid, amount, count) of completed vends on a local day; the issuer's settlement."""
        return self.card_totals([local_day])

    def card_totals(self, local_days: list[str]) -> list[tuple[str, int, int]]:
        """Per card: (uid, amount, count) of completed vends over these local days (a settlement period)."""
        marks = ", ".join("?" * len(local_days))
        rows = self.db.conn.execute(
            f"SELECT uid, SUM(price), COUNT(*) FROM vends WHERE local_day IN ({marks}) AND status = 'completed' "
            "GROUP BY uid ORDER BY uid",
            tuple(local_days),
        ).fetchall()
        return [(uid, int(amount), int(count)) for uid, amount, count in rows]

    def period_before(self, local_day: str) -> list[str]:
        """The trading days of the settlement period of the last trading day before ``local_day``, if it is over.

        "Over" means ``local_day`` falls in a later period: the first day close of a new period settles
        the previous one per card (``settlement: per_card``, docs/privacy.md).
        """
        row = self.db.conn.execute("SELECT MAX(local_day) FROM vends WHERE local_day < ?", (local_day,)).fetchone()
        if row is None or row[0] is None or settlement_period(str(row[0])) == settlement_period(local_day):
            return []
        period = settlement_period(str(row[0]))
        return [day for day in self.trading_days() if settlement_period(day) == period]

    def forget_cards(self, days: list[str]) -> int:
        """Card numbers of settled vends on these days become '' (the row, its money and product stay)."""
        forgotten = 0
        for day in days:
            cursor = self.db.conn.execute(
                "UPDATE vends SET uid = '' WHERE local_day = ? AND status != 'debited' AND uid != ''", (day,)
            )
            forgotten += cursor.rowcount
        return forgotten

    def trading_days(self) -> list[str]:
        """Every local day with a vend, in order (each needs its day_closed settlement)."""
        return [str(row[0]) for row in self.db.conn.execute("SELECT DISTINCT local_day FROM vends ORDER BY local_day")]

    def confirmed_drops(self) -> dict[str, int]:
        rows = self.db.conn.execute(
            "SELECT slot, COUNT(*) FROM vends WHERE status = 'completed' GROUP BY slot"
        ).fetchall()
        return {slot: int(count) for slot, count in rows}
