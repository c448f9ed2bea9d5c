"""An issuer-held account's debits as this machine asked for them: journaled before the request leaves.

A row is written in the intent's commit (``asking``), before the authorisation request goes to the
issuer, and says how it was decided (``online``: the issuer approved; ``offline``: no answer in
time, approved within the card's offline limit). Its ``status`` is the outcome the issuer must hear,
exactly once, through the outbox: ``captured`` (the vend opened on it), ``refunded`` (the vend
failed, money back to the account) or ``void`` (nothing was vended: declined, refused offline, or
left ``open`` by a crash or a lost answer and voided at the next tap). The issuer keys each on the
transaction id, so an approval whose answer was lost is never charged twice.

``account_cards`` keeps each card's profile as the issuer last told it, so a card tapped while the
issuer is down is treated as what it is (a card never seen here: as a student, the strictest).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.journal.database import Database


@dataclass(frozen=True)
class AccountAuth:
    txn_id: str
    uid: str
    amount: int
    local_day: str
    at: str
    how: str  # asking | online | offline
    status: str  # open | captured | void | refunded


class AccountAuths:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, txn_id: str, uid: str, amount: int, local_day: str, at: str) -> None:
        self.db.conn.execute(
            "INSERT INTO account_auths (txn_id, uid, amount, local_day, at) VALUES (?, ?, ?, ?, ?)",
            (txn_id, uid, amount, local_day, at),
        )

    def get(self, txn_id: str) -> AccountAuth | None:
        row = self.db.conn.execute(f"SELECT {COLUMNS} FROM account_auths WHERE txn_id = ?", (txn_id,)).fetchone()
        return AccountAuth(*row) if row else None

    def settle(self, txn_id: str, status: str, how: str | None = None) -> None:
        """The outcome the issuer hears (and, once known, how the debit was approved)."""
        self.db.conn.execute(
            "UPDATE account_auths SET status = ?, how = COALESCE(?, how) WHERE txn_id = ?", (status, how, txn_id)
        )

    def left_open(self) -> list[AccountAuth]:
        """Intents no vend followed (a crash, a lost answer): each is voided at the issuer."""
        rows = self.db.conn.execute(f"SELECT {COLUMNS} FROM account_auths WHERE status = 'open' ORDER BY at")
        return [AccountAuth(*row) for row in rows]

    def offline_spent(self, uid: str, local_day: str) -> int:
        """What ``uid`` spent on offline approvals here that day (refunds given back)."""
        row = self.db.conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM account_auths "
            "WHERE uid = ? AND local_day = ? AND how = 'offline' AND status IN ('open', 'captured')",
            (uid, local_day),
        ).fetchone()
        return int(row[0])

    def remember_profile(self, uid: str, profile: str, local_day: str) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO account_cards (uid, profile, seen) VALUES (?, ?, ?)", (uid, profile, local_day)
        )

    def known_profile(self, uid: str) -> str | None:
        row = self.db.conn.execute("SELECT profile FROM account_cards WHERE uid = ?", (uid,)).fetchone()
        return str(row[0]) if row else None

    def forget(self, before_day: str) -> int:
        """Card numbers of settled debits and remembered profiles older than ``before_day``."""
        gone = self.db.conn.execute(
            "DELETE FROM account_auths WHERE status != 'open' AND local_day < ?", (before_day,)
        ).rowcount
        return gone + self.db.conn.execute("DELETE FROM account_cards WHERE seen < ?", (before_day,)).rowcount


COLUMNS = "txn_id, uid, amount, local_day, at, how, status"
