"""The machine's own wallet (``payment: {mode: machine_wallet}``): balances as the machine's durable copy.

A closed-loop mode for demos and single-machine sites: two machines hold two copies of a card's
balance, so a school with several machines uses the purse on the card (``firmware.payments.card``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from firmware.domain import CardAccount, CardTap, Guardian
from firmware.identity.pseudonym import normalise_uid
from firmware.journal.database import Database
from firmware.journal.guardians import decode_guardian, encode_guardian
from firmware.money import Money


class InsufficientFunds(Exception):
    """A debit larger than the balance; the controller checks first, so this is a guard."""


class Wallet:
    """Implements the ``Payment`` port; every change joins the caller's journal transaction."""

    def __init__(self, db: Database, currency: str = "TWD") -> None:
        self.db = db
        self.currency = currency

    in_books = True  # balances are rows of the books: a debit joins the vend's own transaction

    def issue(self, uid: str, profile: str, balance: int, guardian: Guardian | None = None) -> None:
        """Register a card (scenario set-up or the issuer's card list); no names are stored."""
        self.db.conn.execute(
            "INSERT INTO cards (uid, profile, balance, guardian) VALUES (?, ?, ?, ?)",
            (uid, profile, balance, encode_guardian(guardian or Guardian())),
        )

    def issue_missing(self, cards: Iterable[tuple[str, str, int]]) -> None:
        """Register the ``(uid, profile, balance)`` cards not known yet, in one statement; a known one keeps its row.

        A fleet's machine takes its school's few hundred cards each simulated day: one statement, not
        a lookup and an insert per card.
        """
        unlinked = encode_guardian(Guardian())
        self.db.conn.executemany(
            "INSERT INTO cards (uid, profile, balance, guardian) VALUES (?, ?, ?, ?) ON CONFLICT (uid) DO NOTHING",
            ((uid, profile, balance, unlinked) for uid, profile, balance in cards),
        )

    def lookup(self, tap: CardTap) -> CardAccount | None:
        return self.account(normalise_uid(tap.uid))

    def account(self, uid: str) -> CardAccount | None:
        row = self.db.conn.execute("SELECT profile, balance, guardian FROM cards WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            return None
        return CardAccount(uid, row[0], Money(int(row[1]), self.currency), decode_guardian(row[2]))

    def intend(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        """Nothing to do: the debit itself is one row of the vend's transaction."""

    def take(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        """Nothing to do: see ``intend``."""

    def pay_back(self, uid: str, at: datetime) -> Money | None:
        """Nothing is ever owed: a refund is paid in its own transaction."""
        return None

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
