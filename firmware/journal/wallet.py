"""The stored-value wallet: card balances as the machine's own durable copy (EasyCard-style offline value)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from firmware.domain import CardAccount, Guardian
from firmware.journal.database import Database
from firmware.money import Money


class InsufficientFunds(Exception):
    """A debit larger than the balance; the controller checks first, so this is a guard."""


class Wallet:
    """Implements the ``Payment`` port; every change joins the caller's journal transaction."""

    def __init__(self, db: Database, currency: str = "TWD") -> None:
        self.db = db
        self.currency = currency

    def issue(self, uid: str, profile: str, balance: int, guardian: Guardian | None = None) -> None:
        """Register a card (scenario set-up or the issuer's card list); no names are stored."""
        g = guardian or Guardian()
        self.db.conn.execute(
            "INSERT INTO cards (uid, profile, balance, guardian) VALUES (?, ?, ?, ?)",
            (
                uid,
                profile,
                balance,
                json.dumps(
                    {
                        "linked": g.linked,
                        "daily_limit": g.daily_limit,
                        "blocked_categories": list(g.blocked_categories),
                        "blocked_kinds": list(g.blocked_kinds),
                    }
                ),
            ),
        )

    def lookup(self, uid: str) -> CardAccount | None:
        row = self.db.conn.execute("SELECT profile, balance, guardian FROM cards WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            return None
        g = json.loads(row[2])
        guardian = Guardian(
            linked=bool(g.get("linked", True)),
            daily_limit=g.get("daily_limit"),
            blocked_categories=tuple(g.get("blocked_categories", ())),
            blocked_kinds=tuple(g.get("blocked_kinds", ())),
        )
        return CardAccount(uid, row[0], Money(int(row[1]), self.currency), guardian)

    def _change(self, uid: str, delta: int) -> Money:
        row = self.db.conn.execute(
            "UPDATE cards SET balance = balance + ? WHERE uid = ? AND balance + ? >= 0 RETURNING balance",
            (delta, uid, delta),
        ).fetchone()
        if row is None:
            raise InsufficientFunds(f"balance change {delta} refused")
        return Money(int(row[0]), self.currency)

    def debit(self, uid: str, amount: Money, txn_id: str) -> Money:
        return self._change(uid, -amount.amount)

    def refund(self, uid: str, amount: Money, txn_id: str) -> Money:
        return self._change(uid, amount.amount)

    def balance(self, uid: str) -> Money:
        row = self.db.conn.execute("SELECT balance FROM cards WHERE uid = ?", (uid,)).fetchone()
        return Money(int(row[0]) if row else 0, self.currency)

    def total(self) -> int:
        return int(self.db.conn.execute("SELECT COALESCE(SUM(balance), 0) FROM cards").fetchone()[0])

    def uids(self) -> Iterable[str]:
        return [row[0] for row in self.db.conn.execute("SELECT uid FROM cards ORDER BY uid")]
