"""The issuer's accounts (``payment: {mode: account}``): balances, guardians' consent and caps, debits by txn.

The rule for minors follows LINE Pay Money with iPASS (2018): an account holder under the age of
majority pays only with a guardian's account linked (their consent); the age of majority is the
issuer's configuration (Taiwan lowered it from 20 to 18 on 2023-01-01), and an account is opened
only from age 14. A guardian may cap the account per day or pause it. Orders (open, top-up, link,
cap) are the issuer's own (``vending backend issuer ...``) and each is kept signed by the issuer's
key in ``account_orders``, so the account history can be checked.

Debits are keyed on (machine, txn): an online approval debits at once; the machine's outcome report
(``account``, exactly once through its outbox) captures an offline approval (or records the debt
the issuer declines when the account cannot pay it), or gives a refunded or voided debit back. The
statements are conditional SQL, so a batch holding a capture and a refund of one txn applies both in
order, and a redelivered report (deduplicated on (machine, seq) before this) changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from firmware.domain import CARD_UID, CARD_UID_RULE, IssuerAnswer
from firmware.identity.pseudonym import normalise_uid
from firmware.identity.signing import Identity
from firmware.reporting.authorisation import AuthRequest
from firmware.reporting.signed import canonical, sign_text
from firmware.reporting.wire import WireError
from simulator.backends.signer import check as check_signer
from simulator.backends.store import SqliteReportStore

MIN_AGE = 14  # an e-payment account for a minor from this age, with a guardian's consent
MAX_AGE = 120  # older than anyone living: a date of birth further back is a typo
MAJORITY_AGE = 18  # Taiwan's Civil Code since 2023; an issuer may say otherwise (--majority-age)
DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
PROFILES = ("student", "staff")
GUARDIAN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # the guardian's own account, by its reference
GUARDIAN_RULE = "1-64 letters, digits, '.', '_' or '-'"


class AccountError(ValueError):
    """An order the issuer refuses (unknown card, a minor too young, a negative amount); says which and why."""


@dataclass(frozen=True)
class Account:
    uid: str
    profile: str
    born: str
    balance: int
    guardian: str | None
    daily_cap: int | None
    paused: bool


def age_on(born: str, day: str) -> int:
    b, d = date.fromisoformat(born), date.fromisoformat(day)
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def birth_refusal(born: str, day: str) -> str | None:
    """Why an account cannot be opened on ``day`` for a holder born on ``born`` (both YYYY-MM-DD), or None.

    The issuer's ``open`` and a scenario's ``account: {born}`` are held to this one rule.
    """
    if born > day:
        return f"after {day}, the day the account opens"
    if (age := age_on(born, day)) < MIN_AGE:
        return f"an account is opened from age {MIN_AGE}"
    if age > MAX_AGE:  # 0201 for 2011: a typo that would open a minor's card as an adult's, with no guardian
        return f"{age} years before {day}; a date of birth is at most {MAX_AGE} years back"
    return None


def guardian_refusal(
    uid: str, guardian: object, born_of: Callable[[str], str | None], day: str, majority_age: int = MAJORITY_AGE
) -> str | None:
    """Why ``guardian`` cannot consent for card ``uid``'s account on ``day``, or None.

    A consent is an adult's account reference, never the holder's own, never empty; ``born_of`` gives the
    birth of the account a card's uid names, if known. An empty reference was stored as a guardian: the
    account paid as linked while the issuer's own listing showed "guardian none"; a minor's own card, or
    another minor's account, consented too. The issuer's ``link`` and a scenario's ``account: {guardian}``
    are held to this one rule.
    """
    if not isinstance(guardian, str) or not GUARDIAN.fullmatch(guardian):
        return f"the guardian's account reference, {GUARDIAN_RULE}"
    named = normalise_uid(guardian)
    if named == uid:
        return "the card's own account; nobody consents for themselves"
    born = born_of(named) if CARD_UID.fullmatch(named) else None
    if born is not None and age_on(born, day) < majority_age:
        return f"a minor's account (under {majority_age}); a guardian is an adult"
    return None


class AccountBook:
    """Accounts on the issuer's store; one transaction per decision, on the backend's writer thread."""

    def __init__(self, store: SqliteReportStore, majority_age: int = MAJORITY_AGE) -> None:
        self.store = store
        self.majority_age = majority_age

    # ---- the machines' questions ----------------------------------------------------------------
    def decide(self, request: AuthRequest) -> IssuerAnswer:
        """An inquiry's facts, or an authorisation's decision (and the debit, in the same commit)."""
        uid, day = _field(request.inside, "card", CARD_UID), _field(request.inside, "day", DAY)
        if request.kind == "inquiry":
            account = self.get(uid)
            return self._facts(account, day, approved=True) if account else IssuerAnswer(False, "unknown_card")
        txn = request.inside.get("txn")
        amount = request.inside.get("amount")
        if not isinstance(txn, str) or not 0 < len(txn) <= 96 or type(amount) is not int or amount <= 0:
            raise WireError("an authorisation names its txn and a positive whole amount")
        with self.store.atomic() as conn:
            done = conn.execute(
                "SELECT state FROM account_debits WHERE machine = ? AND txn = ?", (request.machine, txn)
            ).fetchone()
            account = self.get(uid)
            if account is None:
                return IssuerAnswer(False, "unknown_card")
            if done is not None:  # asked again (a resend): the same answer, never a second debit
                return self._facts(account, day, approved=done[0] == "debited")
            refusal = self._refusal(account, day, amount)
            if refusal is not None:
                return refusal
            conn.execute(
                "INSERT INTO account_debits (machine, txn, uid, amount, day, how, state, applied) "
                "VALUES (?, ?, ?, ?, ?, 'online', 'debited', 1)",
                (request.machine, txn, uid, amount, day),
            )
            conn.execute("UPDATE accounts SET balance = balance - ? WHERE uid = ?", (amount, uid))
            return self._facts(self.get(uid) or account, day, approved=True)

    def _refusal(self, account: Account, day: str, amount: int) -> IssuerAnswer | None:
        facts = self._facts(account, day, approved=False)
        if not facts.linked:
            return IssuerAnswer(False, "card_not_linked", {}, facts.profile, facts.balance, False)
        spent = facts.spent_today
        if account.daily_cap is not None and spent + amount > account.daily_cap:
            details = {"limit": account.daily_cap, "spent": spent}
            return IssuerAnswer(False, "guardian_limit", details, account.profile, account.balance, True)
        if account.balance < amount:
            details = {"price": amount, "balance": account.balance}
            return IssuerAnswer(False, "insufficient_funds", details, account.profile, account.balance, True)
        return None

    def _facts(self, account: Account, day: str, approved: bool) -> IssuerAnswer:
        minor = age_on(account.born, day) < self.majority_age
        linked = not account.paused and (account.guardian is not None or not minor)
        return IssuerAnswer(
            approved=approved and linked,
            reason=None if linked else "card_not_linked",
            profile=account.profile,
            balance=account.balance,
            linked=linked,
            daily_limit=account.daily_cap,
            spent_today=self.spent(account.uid, day),
        )

    def outcome_rows(self, machine: str, document: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements that apply a debit's outcome (a machine's ``account`` report), in order."""
        txn, uid, amount, outcome = document["txn"], document["card"], document["amount"], document["outcome"]
        key = (machine, txn)
        if outcome == "captured":  # an offline approval is charged now, or its debt recorded as declined
            return [
                (
                    "INSERT INTO account_debits (machine, txn, uid, amount, day, how, state, applied) "
                    "VALUES (?, ?, ?, ?, ?, 'offline', CASE WHEN COALESCE((SELECT balance FROM accounts "
                    "WHERE uid = ?), -1) >= ? THEN 'debited' ELSE 'declined' END, 0) ON CONFLICT DO NOTHING",
                    (*key, uid, amount, document["day"], uid, amount),
                ),
                (
                    "UPDATE accounts SET balance = balance - ? WHERE uid = ? AND EXISTS (SELECT 1 FROM "
                    "account_debits WHERE machine = ? AND txn = ? AND state = 'debited' AND applied = 0)",
                    (amount, uid, *key),
                ),
                ("UPDATE account_debits SET applied = 1 WHERE machine = ? AND txn = ? AND state = 'debited'", key),
            ]
        return [  # refunded or void: a debit made is given back; a declined debt is cancelled
            (
                "UPDATE accounts SET balance = balance + ? WHERE uid = ? AND EXISTS (SELECT 1 FROM "
                "account_debits WHERE machine = ? AND txn = ? AND state = 'debited')",
                (amount, uid, *key),
            ),
            (
                "UPDATE account_debits SET state = ? "
                "WHERE machine = ? AND txn = ? AND state IN ('debited', 'declined')",
                (outcome, *key),
            ),
            (  # never debited: a late authorisation of this txn is refused
                "INSERT INTO account_debits (machine, txn, uid, amount, day, how, state, applied) "
                "VALUES (?, ?, ?, ?, ?, ?, 'void', 0) ON CONFLICT DO NOTHING",
                (*key, uid, amount, document["day"], document["how"]),
            ),
        ]

    # ---- the issuer's own orders ----------------------------------------------------------------
    def order(self, identity: Identity, order: dict[str, Any]) -> Account:
        """Apply one order (open, topup, link, cap) and keep it signed; ``AccountError`` says why not."""
        uid = normalise_uid(str(order.get("card", "")))
        if not CARD_UID.fullmatch(uid):
            raise AccountError(f"--card {uid!r}: expected {CARD_UID_RULE} (a card's uid)")
        order = order | {"card": uid}
        with self.store.atomic() as conn:
            check_signer(conn, identity)
            account = self.get(uid)
            name = order["order"]
            if name == "open":
                self._open(uid, order, account)
            elif account is None:
                raise AccountError(f"--card {uid}: the issuer holds no account for this card (open it first)")
            elif name == "topup":
                conn.execute("UPDATE accounts SET balance = balance + ? WHERE uid = ?", (order["amount"], uid))
            elif name == "link":
                self._check_guardian(uid, order["guardian"], str(order.get("day") or date.today().isoformat()))
                conn.execute("UPDATE accounts SET guardian = ? WHERE uid = ?", (order["guardian"], uid))
            elif name == "cap":
                cap, paused = order.get("daily_cap", account.daily_cap), order.get("paused", account.paused)
                conn.execute("UPDATE accounts SET daily_cap = ?, paused = ? WHERE uid = ?", (cap, int(paused), uid))
            conn.execute("INSERT INTO account_orders (signed) VALUES (?)", (sign_text(identity, canonical(order)),))
        result = self.get(uid)
        assert result is not None  # written in the commit above
        return result

    def _check_guardian(self, uid: str, guardian: object, day: str) -> None:
        if guardian is None:  # --unlink: the consent withdrawn
            return
        refusal = guardian_refusal(uid, guardian, lambda named: (held.born if (held := self.get(named)) else None),
                                   day, self.majority_age)  # fmt: skip
        if refusal is not None:
            raise AccountError(f"--guardian {str(guardian)[:40]!r}: {refusal}")

    def _open(self, uid: str, order: dict[str, Any], account: Account | None) -> None:
        if account is not None:
            raise AccountError(f"--card {uid}: an account is open for this card already")
        if order["profile"] not in PROFILES:
            raise AccountError(f"--profile {order['profile']!r}: one of {', '.join(PROFILES)}")
        if (refusal := birth_refusal(order["born"], order["day"])) is not None:
            raise AccountError(f"--born {order['born']}: {refusal}")
        if age_on(order["born"], order["day"]) < self.majority_age and (consents := self._consenting_for(uid)):
            raise AccountError(  # linked before this card had an account; a minor's consent is none
                f"--card {uid}: named as the guardian of {consents} account(s), and a guardian is an adult "
                f"(under {self.majority_age} on {order['day']}): link them to an adult first"
            )
        self.store.conn.execute(
            "INSERT INTO accounts (uid, profile, born, balance) VALUES (?, ?, ?, 0)",
            (uid, order["profile"], order["born"]),
        )

    def _consenting_for(self, uid: str) -> int:
        """How many accounts name card ``uid``'s account as their guardian (a reference as the issuer was given it)."""
        references = self.store.conn.execute("SELECT guardian FROM accounts WHERE guardian IS NOT NULL")
        return sum(1 for (guardian,) in references if normalise_uid(guardian) == uid)

    # ---- reading ------------------------------------------------------------------------------
    def get(self, uid: str) -> Account | None:
        row = self.store.conn.execute(
            "SELECT uid, profile, born, balance, guardian, daily_cap, paused FROM accounts WHERE uid = ?", (uid,)
        ).fetchone()
        if row is None:
            return None
        uid, profile, born, balance, guardian, daily_cap, paused = row
        return Account(uid, profile, born, int(balance), guardian, daily_cap, bool(paused))

    def spent(self, uid: str, day: str) -> int:
        row = self.store.conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM account_debits WHERE uid = ? AND day = ? AND state = 'debited'",
            (uid, day),
        ).fetchone()
        return int(row[0])

    def total(self) -> int:
        """Every account's balance: with the machines' takings, what the money-conservation checks add up."""
        return int(self.store.execute("SELECT COALESCE(SUM(balance), 0) FROM accounts")[0][0])

    def declined_debts(self) -> list[tuple[str, str, int]]:
        """Offline approvals the issuer could not charge: (machine, txn, amount), for the vendor's claim."""
        rows = self.store.execute(
            "SELECT machine, txn, amount FROM account_debits WHERE state = 'declined' ORDER BY machine, txn"
        )
        return [(str(m), str(t), int(a)) for m, t, a in rows]

    def orders(self) -> list[dict[str, Any]]:
        return [json.loads(signed) for (signed,) in self.store.execute("SELECT signed FROM account_orders ORDER BY id")]


def _field(inside: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = inside.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise WireError(f"sealed.{name}: not of its form")
    return value
