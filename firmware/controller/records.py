"""What the controller is wired to and what it remembers of a session and its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from firmware.domain import CardAccount, SlotState, VendRecord
from firmware.ports import Clock, Dispenser, Display

EventSink = Callable[[datetime, str, dict[str, Any]], None]
Pseudonym = Callable[[str, str], str]  # (card uid, the visit's transaction id) -> that visit's pseudonym


@dataclass(frozen=True)
class Transaction:
    """A finished transaction as the scenario ``expect`` step sees it; the uid is never printed."""

    txn_id: str
    outcome: str  # vended | refunded | denied | cancelled
    reason: str | None
    slot: str | None
    product: str | None
    price: int | None
    profile: str | None
    pseudonym: str | None
    at: datetime
    card_uid: str | None = field(default=None, repr=False)

    @classmethod
    def recovered(cls, record: VendRecord, dropped: bool, card: SessionCard | None, at: datetime) -> Transaction:
        """A vend a power cut interrupted, as start-up settled it: completed if it dropped, else refunded."""
        outcome, reason = ("vended", None) if dropped else ("refunded", "power_cut")
        return cls(
            record.txn_id,
            outcome,
            reason,
            record.slot,
            record.product,
            record.price,
            card.account.profile if card else None,
            card.pseudonym(record.txn_id) if card else None,
            at,
            record.uid,
        )

    @classmethod
    def of(
        cls,
        txn_id: str,
        outcome: str,
        reason: str | None,
        slot: str | None,
        state: SlotState | None,
        card: SessionCard | None,
        at: datetime,
    ) -> Transaction:
        """The outcome of a session: the slot's product and price as sold, the card as tapped."""
        return cls(
            txn_id,
            outcome,
            reason,
            slot,
            state.product if state else None,
            state.price if state else None,
            card.account.profile if card else None,
            card.pseudonym(txn_id) if card and txn_id else None,
            at,
            card.account.uid if card else None,
        )


@dataclass(frozen=True)
class Hardware:
    """The physical ports the controller drives."""

    clock: Clock
    display: Display
    dispenser: Dispenser


@dataclass(frozen=True)
class SessionCard:
    """The card in session, looked up once when tapped: its account, and how its visits are named."""

    account: CardAccount
    naming: Pseudonym = field(repr=False)
    _named: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # txn -> its name, this visit

    def pseudonym(self, txn_id: str) -> str:
        """The name of the visit ``txn_id``: one per transaction, so no two visits share one.

        A vend's debit, its drop and its report all name it: the HMAC is computed once per visit.
        """
        named = self._named.get(txn_id)
        if named is None:
            named = self._named[txn_id] = self.naming(self.account.uid, txn_id)
        return named


def who(card: SessionCard | None, txn_id: str) -> dict[str, Any]:
    """What a journal entry of ``txn_id`` records of the card: that visit's pseudonym and profile, never the uid."""
    if card is None:
        return {"pseudonym": None, "profile": None}
    return {"pseudonym": card.pseudonym(txn_id), "profile": card.account.profile}
