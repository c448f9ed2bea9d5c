"""The issuer's pending credits: refunds to purse cards, numbered per card, listed until a card has them.

A selling machine reports an operator's refund sealed (``credit``: its txn, the card, the amount); the
issuer gives it the card's next seq, exactly once per (machine, txn). A step a machine left unresolved
that the card's next step shows owed to the card (a debit made with nothing vended, a refund never
made) is listed the same way, once per step (``owe_decided``). Every machine that meets the card reports which
of the listed credits the card now has (``credit-given``: the card by its hotlist name); those leave the
list. After each change the backend publishes the whole list, signed and sealed with the hotlist key,
retained (firmware/reporting/credits.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from firmware.domain import Credit
from firmware.identity.pseudonym import hotlist_name
from firmware.identity.signing import Identity
from firmware.reporting import credits
from simulator.backends.card_counters import UnresolvedDebit
from simulator.backends.store import SqliteReportStore

VALID = timedelta(days=7)
Row = tuple[str, tuple[Any, ...]]


class Review(NamedTuple):
    """Why a reviewer decided a step the counters could not, when (ISO 8601), and the order signed."""

    reason: str
    at: str
    signed: str  # the verdict, the step, what it leaves the card owed, the reason and time: the issuer's JWS


class PendingCredits:
    def __init__(self, store: SqliteReportStore, identity: Identity, key: bytes | None) -> None:
        """``store``: the issuer's; its schema (``ISSUER_SCHEMA``) holds the list and the last version published."""
        self.store = store
        self.identity = identity
        self.key = key
        self.last_version = 0  # of the list ``message`` last composed: what every machine should come to hold

    def rows(self, kind: str, document: dict[str, Any]) -> list[Row]:
        """The statements that apply one report, stored with it in one transaction."""
        if kind == "credit":
            uid = str(document["card"]).upper()
            listed: list[Row] = [
                (
                    "INSERT INTO pending_credits (uid, seq, amount, machine, txn, day) SELECT ?, COALESCE(MAX(seq), 0) "
                    "+ 1, ?, ?, ?, ? FROM pending_credits WHERE uid = ? ON CONFLICT DO NOTHING",
                    (uid, document["amount"], document["machine"], document["txn"], document["day"], uid),
                )
            ]
            if (bought := document.get("bought")) is not None:
                listed.append(
                    (
                        "INSERT INTO credit_purchases (machine, txn, bought) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (document["machine"], document["txn"], bought),
                    )
                )
            return listed
        named = self._uid_named(str(document["card"]))
        if named is None:
            return []  # every credit of that card was reported given already
        marks = ", ".join("?" * len(document["seqs"]))
        return [
            (f"UPDATE pending_credits SET given = 1 WHERE uid = ? AND seq IN ({marks})", (named, *document["seqs"]))
        ]

    def owe_decided(self, decided: list[tuple[UnresolvedDebit, str]], review: Review | None = None) -> int:
        """Record each decided step once, and list a credit for what it leaves the card owed; returns how many.

        One transaction: a step's verdict and its credit are held together or not at all, and a step
        decided before (``card_unresolved_decided``) is never listed again, not even once its credit was
        given and forgotten with its day. The credit's txn names the step it pays for; its day, the step's.
        ``review``: a reviewer's verdict (``purse_review``), recorded with the step in the same transaction.
        """
        listed = 0
        with self.store.atomic() as conn:
            for step, day in decided:
                owed = step.owed_to_card
                recorded = conn.execute(
                    "INSERT INTO card_unresolved_decided (machine, txn, verdict, owed) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (step.machine, step.txn, step.verdict, owed),
                ).rowcount
                if recorded and review is not None:
                    conn.execute(
                        "INSERT INTO card_unresolved_reviewed (machine, txn, reason, at, signed) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (step.machine, step.txn, *review),
                    )
                if not recorded or not owed:
                    continue
                document = {"card": step.uid, "amount": owed, "machine": step.machine, "txn": f"{step.txn}/unresolved"}
                for sql, params in self.rows("credit", document | {"day": day}):
                    listed += conn.execute(sql, params).rowcount
        return listed

    def _uid_named(self, name: str) -> str | None:
        if self.key is None:
            return None
        listed = self.store.execute("SELECT DISTINCT uid FROM pending_credits WHERE given = 0")
        return next((str(uid) for (uid,) in listed if hotlist_name(self.key, str(uid)) == name), None)

    def pending(self) -> int:
        """What the issuer still owes to cards (counted in the simulator's money check)."""
        return int(self.store.execute("SELECT COALESCE(SUM(amount), 0) FROM pending_credits WHERE given = 0")[0][0])

    def message(self, now: datetime) -> tuple[str, str] | None:
        """``(topic, payload)`` of the whole list now; None without the hotlist key.

        Its version is the time in µs, but never at or below the last one published from this database
        (``credits_published``): a machine keeps only a newer list, so one published by a tool whose
        clock runs behind the backend's (`vending issuer verdict` on another host) would be thrown away.
        """
        if self.key is None:
            return None
        cards: dict[str, list[Credit]] = {}
        with self.store.atomic() as conn:
            (last,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM credits_published").fetchone()
            version = self.last_version = max(int(now.timestamp() * 1_000_000), int(last) + 1)
            conn.execute("DELETE FROM credits_published")
            conn.execute("INSERT INTO credits_published (version) VALUES (?)", (version,))
            listed = conn.execute(
                "SELECT p.uid, p.seq, p.amount, b.bought FROM pending_credits p LEFT JOIN credit_purchases b "
                "ON b.machine = p.machine AND b.txn = p.txn WHERE p.given = 0"
            )
            for uid, seq, amount, bought in listed:
                cards.setdefault(hotlist_name(self.key, str(uid)), []).append(Credit(int(seq), int(amount), bought))
        return credits.TOPIC, credits.compose(self.identity, self.key, version, now, now + VALID, cards)
