"""Stored value on the card (``payment: {mode: card}``): the purse is read and debited through the reader.

The card is reached only through the tap's ``link`` while it stays in the field. The money path is:

1. ``lookup``: recover the card (finish or undo a pulled step), settle what this machine owes it or
   left open with it (``CardSteps``), then read the purse, the issuer-signed profile and the day's
   spend from the card's own log;
2. ``intend`` (in the cashier's transaction): journal the debit with the counter the card's step
   will carry, before anything is written to the card;
3. ``take``: the three writes and the read-back (``purse_io.debit``); ``PaymentUnconfirmed`` if the
   card left or changed, and then nothing is vended: the card's next tap here shows whether the
   debit was made, and a debit made is given back;
4. ``debit`` (in the vend's transaction): the intent is done;
5. ``refund``: owed in the books, paid to the card by ``pay_back`` when it is at hand (now, or at
   its next tap here; after ``HAND_OVER_DAYS`` without one, by any machine from the issuer's list).

The sector keys come from the secure access module (``Sam``), never from a config or a log; a log
line about a card never names it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from firmware.cards.purse import CardError, LogEntry, PurseState, Sam, card_day, step_mac
from firmware.cards.purse_io import CreditGiven, apply_credit, credit, credit_fits, recover, step_fate
from firmware.cards.purse_io import debit as debit_card
from firmware.cards.tag import CardGone, CardRefused, ClassicTag
from firmware.domain import CardAccount, CardLink, CardTap, JournalEntry, SpendStep
from firmware.errors import CardNotRead, PaymentUnconfirmed
from firmware.identity.pseudonym import hotlist_name, normalise_uid
from firmware.journal.card_steps import CardCounters, CardStep, CardSteps
from firmware.journal.credits import CreditsBook
from firmware.journal.database import Database
from firmware.journal.guardians import GuardianBook
from firmware.journal.vends import VendLedger
from firmware.money import Money
from firmware.ports import Journal

log = logging.getLogger(__name__)
CARD_TROUBLE = (CardGone, CardRefused, CardError)
UNRESOLVED_STEP = "card_step_unresolved"  # the journal entry whose report hands a step to the issuer
REFUND_HANDED_OVER = "card_refund_handed_over"  # the journal entry whose report has the issuer list a refund
HAND_OVER_DAYS = 7  # a card not back here within a week: what is open with it goes to the issuer
CREDITS_GIVEN = "credits_given"  # the journal entry whose report tells the issuer a card has its pending credits
T = TypeVar("T")


class CardPurse:
    """Implements the ``Payment`` port on the card in the field; ``CardSteps`` hold what is in flight."""

    in_books = False

    def __init__(
        self, db: Database, journal: Journal, sam: Sam, machine_id: str, currency: str, zone: ZoneInfo
    ) -> None:
        self.db = db
        self.journal = journal
        self.sam = sam
        self.machine_id = machine_id
        self.currency = currency
        self.zone = zone
        self.steps = CardSteps(db)
        self.vends = VendLedger(db)
        self.counters = CardCounters(db)
        self.guardians = GuardianBook(db)
        self.credits: CreditsBook | None = None  # the issuer's pending credits (set by the node, with its key)
        self._at_hand: tuple[str, CardLink] | None = None  # the card of the current session and how to reach it
        self._read: PurseState | None = None  # that card as last read or written

    # ---- reading ------------------------------------------------------------------------------
    def lookup(self, tap: CardTap) -> CardAccount | None:
        uid = normalise_uid(tap.uid)
        session = self._at_hand, self._read
        self._at_hand, self._read = None, None
        if tap.link is None:
            log.info("a card tapped on %s: that reader cannot reach a purse", tap.reader)
            return None
        self._at_hand = (uid, tap.link)
        try:
            state = self._on_card(uid, lambda tag: self._settle(tag, uid, tap.at))
        except CardGone:  # lifted at once: not a card refused, a card to hold on the reader
            self._at_hand, self._read = session  # nothing happened: a session's card is still the one it has
            raise CardNotRead(f"the card left {tap.reader} before it was read") from None
        except CARD_TROUBLE as exc:
            log.info("a card on %s was not read: %s", tap.reader, type(exc).__name__)
            return None
        return self._account(uid, state, card_day(tap.at))

    def account(self, uid: str) -> CardAccount | None:
        """Nothing without the card: its purse and profile are on it."""
        return None

    def balance(self, uid: str) -> Money:
        read = self._read if self._at_hand and self._at_hand[0] == uid else None
        return Money(read.balance if read else 0, self.currency)

    # ---- the money path -------------------------------------------------------------------------
    def intend(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        read = self._card_read(uid)
        step = CardStep(txn_id, uid, "debit", amount.amount, read.counter + 1, at, "open", before=read.balance)
        self.steps.open(step)

    def take(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        step = self.steps.get(txn_id)
        if step is None or step.kind != "debit":
            raise PaymentUnconfirmed(f"{txn_id}: no debit intent journaled")
        try:
            self._read = self._on_card(
                uid, lambda tag: debit_card(tag, self.sam, step.amount, self.machine_id, at, step.counter)
            )
        except CARD_TROUBLE as exc:
            raise PaymentUnconfirmed(f"{txn_id}: the card did not confirm the debit ({type(exc).__name__})") from None

    def debit(self, uid: str, amount: Money, txn_id: str) -> Money:
        read = self._card_read(uid)
        self.steps.close(txn_id)
        self._count(uid, read.log[0])
        return Money(read.balance, self.currency)

    def refund(self, uid: str, amount: Money, txn_id: str) -> Money | None:
        self.steps.owe(txn_id, uid, amount.amount, self.vends.made_at(txn_id))
        return None

    def pay_back(self, uid: str, at: datetime) -> Money | None:
        if self._at_hand is None or self._at_hand[0] != uid:
            return None
        try:
            self._read = self._on_card(uid, lambda tag: self._settle(tag, uid, at))
        except CARD_TROUBLE as exc:
            log.warning("a refund stays owed to a card: %s", type(exc).__name__)
            return None
        if any(step.kind == "credit" for step in self.steps.of(uid)):
            return None
        return Money(self._read.balance, self.currency)

    # ---- settling what a card was left with -----------------------------------------------------
    def _settle(self, tag: ClassicTag, uid: str, at: datetime) -> PurseState:
        """Recover the card, then resolve this machine's open steps with it: the state after."""
        state = recover(tag, self.sam)
        for step in self.steps.of(uid):
            if step.kind == "debit":
                self._resolve_debit(step, state, at)
        for step in self.steps.of(uid):
            if step.kind == "credit":
                state = self._pay(tag, step, state, at)
        state = self._give_credits(tag, uid, state, at)
        self._read = state
        return state

    def _resolve_debit(self, step: CardStep, state: PurseState, at: datetime) -> None:
        made = self._fate(step, state, step.amount)
        if made is None:
            self._leave_to_issuer(step, at)
            return
        with self.db.atomic("card_step"):
            if made:  # taken, never vended on: it is owed back
                self.steps.owe(step.txn_id, step.uid, step.amount, step.at)
                self._count_made(step, state)
            else:
                self.steps.close(step.txn_id)

    def _give_credits(self, tag: ClassicTag, uid: str, state: PurseState, at: datetime) -> PurseState:
        """The issuer's pending credits for the card (an operator's refund of a sale on any machine).

        Each is given once, the card remembering which (``apply_credit``); the issuer hears which it has.
        """
        book = self.credits
        if book is None:
            return state
        listed = book.for_card(uid)
        if not listed:
            return state  # the usual tap: nothing the issuer lists for this card
        today = card_day(at).isoformat()
        for seq, amount, bought in listed:
            if seq <= state.credits:
                continue
            if not credit_fits(state, amount):  # the card keeps one mark, the last credit given: in order only
                log.info("the issuer's credits wait for a card whose purse is too full to take them")
                break
            with self.db.atomic("card_step"):
                book.attempt(uid, seq)  # journaled before the card is written: a pull leaves it in doubt, not lost
            try:  # on the purchase's own day, its allowance comes back with the money
                state = apply_credit(tag, self.sam, seq, amount, at, state.counter + 1, refund=bought == today)
            except CreditGiven:
                continue
            with self.db.atomic("card_step"):
                self._count(uid, state.log[0])  # the step by the card's counter, for the issuer's settlement
        given = [credit.seq for credit in listed if credit.seq <= state.credits]
        with self.db.atomic("journal"):
            book.settle(uid, state.credits)
            if given:
                card = hotlist_name(book.key, uid)
                self.journal.append(JournalEntry(CREDITS_GIVEN, at, None, {"card": card, "seqs": given}))
        return state

    def _pay(self, tag: ClassicTag, step: CardStep, state: PurseState, at: datetime) -> PurseState:
        """Pay one owed refund: the counter it will carry is journaled first, so a pull never pays twice.

        A try the card's log has moved past may have been paid: the issuer decides it, never a second
        credit here. A refund a full purse cannot take stays owed until a tap finds room.
        """
        if step.counter is not None:
            made = self._fate(step, state, -step.amount)
            if made is None:
                self._leave_to_issuer(step, at)
                return state
            if made:
                with self.db.atomic("card_step"):
                    self.steps.close(step.txn_id)
                    self._count_made(step, state)
                return state
        if not credit_fits(state, step.amount):
            log.info("a refund stays owed to a card: its purse is too full to take it")
            if step.counter is not None:  # its last try is known not made: forget it, before the log moves past it
                with self.db.atomic("card_step"):
                    self.steps.forget_try(step.txn_id)
            return state
        with self.db.atomic("card_step"):
            self.steps.attempt(step.txn_id, state.counter + 1, at, state.balance)
        same_day = step.bought is not None and card_day(step.bought) == card_day(at)  # its day's allowance only
        after = credit(tag, self.sam, step.amount, self.machine_id, at, refund=same_day, counter=state.counter + 1)
        with self.db.atomic("card_step"):
            self.steps.close(step.txn_id)
            self._count(step.uid, after.log[0])
        return after

    # ---- a card that does not come back ----------------------------------------------------------
    def hand_over(self, now: datetime) -> int:
        """Steps still open ``HAND_OVER_DAYS`` on go to the issuer; how many.

        Their card has not been back here since (a tap settles what it can), or its purse is too full
        for a refund: the issuer's list waits for room the same way, on every machine.

        A refund never tried is listed by the issuer for every machine of the school (``credit``), so a
        student who does not come back to this machine is paid at the next; a debit or a refund's try
        whose fate only the card shows is decided by the issuer from the card's next settled step
        (``unresolved``), and listed when the card is owed it. Each leaves this machine's care in the
        commit that journals its report: it is never paid or resolved here again. Only a machine whose
        cards take the issuer's list (``credits``) hands over: elsewhere nobody could pay it.
        """
        if self.credits is None:
            return 0
        waiting = self.steps.waiting_since(now - timedelta(days=HAND_OVER_DAYS))
        for step in waiting:
            untried_refund = step.kind == "credit" and step.counter is None
            self._leave_to_issuer(step, now, REFUND_HANDED_OVER if untried_refund else UNRESOLVED_STEP)
        if waiting:
            log.info("%d step(s) whose card has not been back for %d days handed to the issuer", len(waiting),
                     HAND_OVER_DAYS)  # fmt: skip
        return len(waiting)

    def _leave_to_issuer(self, step: CardStep, at: datetime, entry: str = UNRESOLVED_STEP) -> None:
        """The issuer's from now on, in the commit that journals ``entry``, whose report hands it over.

        ``UNRESOLVED_STEP`` (the card's log moved past the step, or the card was not back for a week):
        the issuer matches it with the next step any machine settled; ``REFUND_HANDED_OVER``: it lists it.
        """
        with self.db.atomic("card_step"):
            self.steps.leave_to_issuer(step.txn_id)
            self.journal.append(JournalEntry(entry, at, step.txn_id, {}))

    def _fate(self, step: CardStep, state: PurseState, amount: int) -> bool | None:
        if step.counter is None or step.at is None:
            return False  # never tried on a card
        return step_fate(state, step.counter, amount, self.machine_id, step.at)

    def _count_made(self, step: CardStep, state: PurseState) -> None:
        """Count a step the card shows made (``step_fate`` found its entry)."""
        entry = state.entry(step.counter or 0)
        if entry is None:
            raise CardError(f"{step.txn_id}: the card no longer holds step #{step.counter}")
        self._count(step.uid, entry)

    def _count(self, uid: str, entry: LogEntry) -> None:
        """The step, numbered by the card's counter and MACed by the SAM, for the issuer's settlement."""
        day = entry.at.astimezone(self.zone).date().isoformat()
        mac = step_mac(self.sam, bytes.fromhex(uid), entry.counter, entry.amount, entry.balance)
        self.counters.record(uid, entry.counter, entry.amount, entry.balance, mac, day)

    # ---- helpers ------------------------------------------------------------------------------
    def _on_card(self, uid: str, work: Callable[[ClassicTag], T]) -> T:
        if self._at_hand is None or self._at_hand[0] != uid:
            raise CardGone("the card is not at hand")
        with self._at_hand[1]() as exchange:
            return work(ClassicTag(bytes.fromhex(uid), exchange))

    def _card_read(self, uid: str) -> PurseState:
        if self._read is None or self._at_hand is None or self._at_hand[0] != uid:
            raise PaymentUnconfirmed("the card of this session was not read")
        return self._read

    def _account(self, uid: str, state: PurseState, today: date) -> CardAccount:
        money = Money(state.balance, self.currency)
        spent = Money(state.spent_on(today), self.currency)
        log = tuple(SpendStep(entry.at, entry.day_spent) for entry in state.log if card_day(entry.at) == today)
        return CardAccount(uid, state.record.profile, money, self.guardians.of(uid), spent_today=spent, card_log=log)
