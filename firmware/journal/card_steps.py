"""Money steps on a card that the machine owes an outcome: journaled before the card is written.

A ``debit`` row is the intent of a debit: written (with the counter the card's step will carry)
before the first write to the card, removed in the vend's own transaction once the card confirmed
it. A row left behind means the card left mid-debit; its next tap here shows what happened. A
``credit`` row is a refund owed to a card: written with the refund, removed once the card
confirmed the credit; ``counter`` is set just before each attempt, so a pulled credit is never paid
twice. ``unknown``: the card's log no longer reaches the step (it was used elsewhere since), so the
issuer decides it, a debit or a credit's last try alike: the step (its counter, amount and the
balance before it) goes to the issuer, sealed, which matches it against the next step any machine
settled on that card. The money in
these rows is part of the machine's invariant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmware.journal.database import Database


@dataclass(frozen=True)
class CardStep:
    txn_id: str
    uid: str
    kind: str  # debit | credit
    amount: int
    counter: int | None  # the card counter the step carries on the card, once known
    at: datetime | None  # the time the card's log entry carries (a credit: of its latest try)
    status: str  # open | unknown
    before: int | None = None  # the purse's balance when the debit's intent or the credit's last try was journaled
    bought: datetime | None = None  # a credit: when the purchase it gives back was made (None: not known)


class CardSteps:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, step: CardStep) -> None:
        self.db.conn.execute(
            "INSERT INTO card_steps (txn_id, uid, kind, amount, counter, at, status, before) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                step.txn_id,
                step.uid,
                step.kind,
                step.amount,
                step.counter,
                step.at.isoformat() if step.at else "",
                step.status,
                step.before,
            ),
        )

    def of(self, uid: str) -> list[CardStep]:
        rows = self.db.conn.execute(
            f"SELECT {COLUMNS} FROM card_steps WHERE uid = ? AND status = 'open' ORDER BY txn_id",
            (uid,),
        ).fetchall()
        return [_step(row) for row in rows]

    def get(self, txn_id: str) -> CardStep | None:
        row = self.db.conn.execute(f"SELECT {COLUMNS} FROM card_steps WHERE txn_id = ?", (txn_id,)).fetchone()
        return _step(row) if row else None

    def close(self, txn_id: str) -> None:
        self.db.conn.execute("DELETE FROM card_steps WHERE txn_id = ?", (txn_id,))

    def owe(self, txn_id: str, uid: str, amount: int, bought: datetime | None) -> None:
        """A refund owed to the card (also a debit the card shows was made without a vend); not tried yet.

        ``bought``: when the purchase it gives back was made, so that paying it frees that day's allowance only.
        """
        self.db.conn.execute(
            "INSERT OR REPLACE INTO card_steps (txn_id, uid, kind, amount, counter, at, status, bought) "
            "VALUES (?, ?, 'credit', ?, NULL, '', 'open', ?)",
            (txn_id, uid, amount, bought.isoformat() if bought else None),
        )

    def attempt(self, txn_id: str, counter: int, at: datetime, before: int) -> None:
        """The next try at paying a credit: the counter and time its log entry will carry, journaled first.

        With the balance it starts from: what the issuer needs if the card's log moves past the try.
        """
        self.db.conn.execute(
            "UPDATE card_steps SET counter = ?, at = ?, before = ? WHERE txn_id = ?",
            (counter, at.isoformat(), before, txn_id),
        )

    def forget_try(self, txn_id: str) -> None:
        """A credit's last try that the card shows was not made: the step is owed as if never tried."""
        self.db.conn.execute("UPDATE card_steps SET counter = NULL, at = '', before = NULL WHERE txn_id = ?", (txn_id,))

    def leave_to_issuer(self, txn_id: str) -> None:
        """The issuer settles the step from now on (``unknown``): this machine never pays or resolves it again."""
        self.db.conn.execute("UPDATE card_steps SET status = 'unknown' WHERE txn_id = ?", (txn_id,))

    def waiting_since(self, before: datetime) -> list[CardStep]:
        """Open steps whose card has not been back since ``before``: last tried then, or owed since then.

        A step with no time at all (a refund owed before the purchase's time was kept) counts as waiting.
        """
        rows = self.db.conn.execute(f"SELECT {COLUMNS} FROM card_steps WHERE status = 'open' ORDER BY txn_id")
        steps = [_step(row) for row in rows.fetchall()]
        return [step for step in steps if (since := step.at or step.bought) is None or since <= before]

    def owed(self) -> int:
        """Refunds the machine holds for cards (money that is the cards'); not those it left to the issuer."""
        row = self.db.conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM card_steps WHERE kind = 'credit' AND status = 'open'"
        ).fetchone()
        return int(row[0])

    def all(self) -> list[CardStep]:
        rows = self.db.conn.execute(f"SELECT {COLUMNS} FROM card_steps ORDER BY txn_id").fetchall()
        return [_step(row) for row in rows]


COLUMNS = "txn_id, uid, kind, amount, counter, at, status, before, bought"


def _step(row: tuple[Any, ...]) -> CardStep:
    txn_id, uid, kind, amount, counter, at, status, before, bought = row
    moment = datetime.fromisoformat(at) if at else None
    purchase = datetime.fromisoformat(bought) if bought else None
    return CardStep(txn_id, uid, kind, int(amount), counter, moment, status, before, purchase)


class CardCounters:
    """Each money step this machine made on a card, by the card's counter: what the issuer checks for gaps.

    Written in the step's own commit; settled to the issuer with the period (no times: the period's
    days only), and forgotten with the card numbers of those days.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, uid: str, counter: int, amount: int, balance: int, mac: str, local_day: str) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO card_counters (uid, counter, amount, balance, mac, local_day) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (uid, counter, amount, balance, mac, local_day),
        )

    def of_days(self, days: list[str]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(days))
        rows = self.db.conn.execute(
            f"SELECT uid, counter, amount, balance, mac FROM card_counters WHERE local_day IN ({marks}) "
            "ORDER BY uid, counter",
            days,
        ).fetchall()
        return [{"uid": u, "counter": c, "amount": a, "balance": b, "mac": m} for u, c, a, b, m in rows]

    def forget(self, days: list[str]) -> int:
        marks = ",".join("?" * len(days))
        cursor = self.db.conn.execute(f"DELETE FROM card_counters WHERE local_day IN ({marks})", days)
        return cursor.rowcount
