"""An issuer-held account (``payment: {mode: account}``): the machine asks, the issuer decides and debits.

The LINE Pay / iPASS model for minors: the balance lives at the issuer, and a minor's account pays
only with a guardian's consent on record; the guardian may cap or pause it. The money path is:

1. ``lookup``: an inquiry at the tap (profile, balance, consent, the guardian's cap and the day's
   spend across every machine); no answer within ``timeout_ms``: the card is treated offline;
2. ``intend`` (in the cashier's transaction): the debit is journaled (``AccountAuths``) before the
   authorisation request leaves;
3. ``take``: the issuer approves (and debits, keyed on the transaction) or declines with a reason
   the display shows; without an answer in time the machine approves up to the card's offline
   limit for the day (Nayax-style deferred authorisation) and refuses above it (``offline_limit``);
4. ``debit`` (in the vend's transaction): the outcome ``captured`` is journaled, and with it a
   report to the issuer, sealed, through the outbox: exactly once at the issuer, which charges an
   offline approval then (or records the debt it declines);
5. ``refund``: ``refunded`` is journaled the same way and the issuer gives the money back.

An intent no vend followed (a crash, a lost answer, a decline) is reported ``void``: an approval
whose answer never arrived is reversed. docs/payments.md has the sequence and the privacy of each
message; no log line names a card.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from firmware.domain import CardAccount, CardTap, Guardian, IssuerAnswer, JournalEntry
from firmware.errors import PaymentUnconfirmed
from firmware.identity.pseudonym import normalise_uid
from firmware.journal.account_auths import AccountAuths
from firmware.journal.database import Database
from firmware.journal.guardians import GuardianBook
from firmware.messages import DENIAL_REASONS
from firmware.money import Money
from firmware.ports import IssuerLink, Journal

log = logging.getLogger(__name__)
OFFLINE_PROFILE = "student"  # a card never answered for here is treated as the strictest profile
ACCOUNT_STEP = "account_step"  # the journal entry whose report tells the issuer a debit's outcome


class IssuerAccount:
    """Implements the ``Payment`` port on an issuer-held account; ``link`` is set once the machine reports."""

    in_books = False

    def __init__(
        self,
        db: Database,
        journal: Journal,
        machine_id: str,
        currency: str,
        zone: ZoneInfo,
        timeout_s: float,
        offline_limit: int,
    ) -> None:
        self.db = db
        self.journal = journal
        self.machine_id = machine_id
        self.currency = currency
        self.zone = zone
        self.timeout_s = timeout_s
        self.offline_limit = offline_limit
        self.link: IssuerLink | None = None
        self.auths = AccountAuths(db)
        self.guardians = GuardianBook(db)
        self._session: tuple[str, IssuerAnswer | None] | None = None  # the card at hand; None: its issuer is silent
        self._balance: dict[str, int] = {}
        self._how: dict[str, str] = {}  # txn -> online | offline, until the vend's commit records it

    # ---- reading ------------------------------------------------------------------------------
    def lookup(self, tap: CardTap) -> CardAccount | None:
        uid = normalise_uid(tap.uid)
        day = self._day(tap.at)
        self._void_left_open(tap.at)
        answer = self._ask("inquiry", {"card": uid, "day": day})
        self._session = (uid, answer)
        local = self.guardians.of(uid)
        if answer is None:  # the issuer is silent: what the card may still spend offline today
            left = max(0, self.offline_limit - self.auths.offline_spent(uid, day))
            self._balance[uid] = left
            profile = self.auths.known_profile(uid) or OFFLINE_PROFILE
            return CardAccount(uid, profile, self._money(left), local, offline_limit=self.offline_limit)
        if answer.profile is None or answer.balance is None:  # not an account this issuer holds
            return None
        if self.auths.known_profile(uid) != answer.profile:  # a commit only when it changed
            with self.db.atomic("journal"):
                self.auths.remember_profile(uid, answer.profile, day)
        self._balance[uid] = answer.balance
        guardian = _with_issuer(local, answer)
        return CardAccount(uid, answer.profile, self._money(answer.balance), guardian, self._money(answer.spent_today))

    def account(self, uid: str) -> CardAccount | None:
        """Nothing without asking the issuer (start-up recovery needs no balance)."""
        return None

    def balance(self, uid: str) -> Money:
        return self._money(self._balance.get(uid, 0))

    # ---- the money path -------------------------------------------------------------------------
    def intend(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        self.auths.open(txn_id, uid, amount.amount, self._day(at), at.isoformat())

    def take(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        if self._session is None or self._session[0] != uid:
            raise PaymentUnconfirmed(f"{txn_id}: not the card of this session")
        day = self._day(at)
        answer = None
        if self._session[1] is not None:  # the issuer answered at the tap: ask it to authorise
            inside = {"card": uid, "day": day, "txn": txn_id, "amount": amount.amount, "currency": self.currency}
            answer = self._ask("authorise", inside)
        if answer is None:
            self._offline(uid, amount.amount, txn_id, day, at)
        elif answer.approved:
            self._how[txn_id] = "online"
            self._balance[uid] = answer.balance if answer.balance is not None else self._balance.get(uid, 0)
        else:
            self._outcome(txn_id, "void", at)
            reason = answer.reason if answer.reason in DENIAL_REASONS else "card_not_linked"
            raise PaymentUnconfirmed(f"{txn_id}: the issuer declined ({reason})", reason, answer.details)

    def debit(self, uid: str, amount: Money, txn_id: str) -> Money:
        auth = self.auths.get(txn_id)
        if auth is None:
            raise PaymentUnconfirmed(f"{txn_id}: no authorisation journaled")
        self.auths.settle(txn_id, "captured", self._how.pop(txn_id, auth.how))
        self._report(txn_id, datetime.fromisoformat(auth.at))
        return self.balance(uid)

    def refund(self, uid: str, amount: Money, txn_id: str) -> Money | None:
        auth = self.auths.get(txn_id)
        if auth is None:
            raise PaymentUnconfirmed(f"{txn_id}: no authorisation journaled")
        self.auths.settle(txn_id, "refunded")
        self._report(txn_id, datetime.fromisoformat(auth.at))
        self._balance[uid] = self._balance.get(uid, 0) + amount.amount
        return self.balance(uid)  # the issuer credits it when the report arrives

    def pay_back(self, uid: str, at: datetime) -> Money | None:
        return None  # nothing is ever owed at the machine: refunds go to the issuer

    # ---- helpers ------------------------------------------------------------------------------
    def _offline(self, uid: str, amount: int, txn_id: str, day: str, at: datetime) -> None:
        spent = self.auths.offline_spent(uid, day)  # this intent is still ``asking``: not counted yet
        if spent + amount > self.offline_limit:
            self._outcome(txn_id, "void", at)
            details = {"limit": self.offline_limit, "spent": spent}
            raise PaymentUnconfirmed(f"{txn_id}: offline limit reached", "offline_limit", details)
        log.info("the issuer did not answer in %.0f ms: approved offline", self.timeout_s * 1000)
        self._how[txn_id] = "offline"  # journaled with the capture, in the vend's own commit
        self._balance[uid] = self.offline_limit - spent - amount

    def _void_left_open(self, at: datetime) -> None:
        """Intents a crash or a lost answer left without a vend: the issuer reverses any debit it made."""
        for auth in self.auths.left_open():
            self._outcome(auth.txn_id, "void", at)

    def _outcome(self, txn_id: str, status: str, at: datetime) -> None:
        with self.db.atomic("journal"):
            self.auths.settle(txn_id, status)
            self._report(txn_id, at)

    def _report(self, txn_id: str, at: datetime) -> None:
        self.journal.append(JournalEntry(ACCOUNT_STEP, at, txn_id, {}))

    def _ask(self, kind: str, inside: dict[str, Any]) -> IssuerAnswer | None:
        return self.link.ask(kind, inside, self.timeout_s) if self.link is not None else None

    def _day(self, at: datetime) -> str:
        return at.astimezone(self.zone).date().isoformat()

    def _money(self, amount: int) -> Money:
        return Money(amount, self.currency)


def _with_issuer(local: Guardian, answer: IssuerAnswer) -> Guardian:
    """The machine's own controls for the card, with the issuer's consent and cap over them."""
    limits = [limit for limit in (local.daily_limit, answer.daily_limit) if limit is not None]
    return Guardian(
        linked=local.linked and answer.linked,
        daily_limit=min(limits) if limits else None,
        blocked_categories=local.blocked_categories,
        blocked_kinds=local.blocked_kinds,
        blocked_allergens=local.blocked_allergens,
    )
