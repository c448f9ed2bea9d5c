"""The small interfaces the controller depends on; the journal, the simulator and real drivers implement them.

Each port is a ``typing.Protocol`` so adapters need no common base class, and the controller can be
wired to virtual hardware in tests and to serial readers or MQTT in production without changes.
Value types that cross these ports live in ``firmware.domain``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from firmware.domain import (
    CardAccount,
    CardTap,
    Denial,
    Guardian,
    IssuerAnswer,
    JournalEntry,
    OutboundMessage,
    Period,
    SaleRequest,
    SlotState,
    VendRecord,
)
from firmware.messages import Message
from firmware.money import Money


class Clock(Protocol):
    """Where time comes from; logic never calls ``datetime.now()`` itself."""

    def now(self) -> datetime: ...


@runtime_checkable
class CardReader(Protocol):
    """A source of card taps, like python-can's ``BusABC``: receive with a timeout, then close."""

    name: str

    def read_tap(self, timeout: float | None = None) -> CardTap | None: ...

    def close(self) -> None: ...


class Display(Protocol):
    """Shows one bilingual message at a time."""

    def show(self, message: Message) -> None: ...


class Dispenser(Protocol):
    """Runs a slot's motor and reports whether the drop sensor saw the product fall."""

    def vend(self, slot: str, txn_id: str) -> bool: ...

    def was_dispensed(self, txn_id: str) -> bool | None:
        """After a power cut: did this vend drop? ``None`` when the hardware cannot tell."""
        ...


class SalesPolicy(Protocol):
    """Decides whether a sale may happen; returns the first denial or ``None``."""

    def evaluate(self, request: SaleRequest) -> Denial | None: ...


class Reporter(Protocol):
    """Turns journal entries into outbound reports (none, or MQTT via the outbox)."""

    def messages_for(self, entry: JournalEntry) -> list[OutboundMessage]: ...


class Journal(Protocol):
    """Append-only durable record; ``atomic()`` groups entries with wallet, stock and vend changes."""

    def atomic(self, step: str = "journal") -> AbstractContextManager[Any]: ...

    def append(self, entry: JournalEntry) -> int: ...

    def next_txn_id(self, machine_id: str) -> str:
        """A transaction id made once, durably, inside the current transaction (never per retry)."""
        ...

    def save_setting(self, key: str, value: str) -> None:
        """A machine setting that outlives a restart (e.g. remote lockouts); joins the transaction."""
        ...

    def prove_headroom(self, size: int, entry: JournalEntry) -> None:
        """Commit ``entry`` with ``size`` bytes written and removed alongside; ``StorageError`` if it won't fit."""
        ...

    def release_due(self, now: datetime, until: datetime | None = None) -> int:
        """Send the reports held for a release window that has ended (by ``until``, if given); how many."""
        ...

    def next_release(self) -> datetime | None:
        """When the next held report is due, if any."""
        ...


class Payment(Protocol):
    """Where a card's money lives (docs/payments.md): the machine's own wallet, or the purse on the card.

    With ``in_books`` the money moves inside the vend's own transaction (``debit``, ``refund``).
    Otherwise it moves outside the machine (a card write): the cashier journals the intent first
    (``intend``, inside a transaction), moves it (``take``, outside), then opens the vend with
    ``debit``; a refund is owed in the books and paid to the card by ``pay_back`` when it is at hand.
    """

    in_books: bool

    def lookup(self, tap: CardTap) -> CardAccount | None:
        """The account of the tapped card, read once per session; ``None``: not a card this machine takes."""
        ...

    def account(self, uid: str) -> CardAccount | None:
        """What the machine knows of a card without it at hand (start-up recovery)."""
        ...

    def balance(self, uid: str) -> Money: ...

    def intend(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        """Journal that ``amount`` is about to be taken (joins the current transaction)."""
        ...

    def take(self, uid: str, amount: Money, txn_id: str, at: datetime) -> None:
        """Take the intended amount where the money lives, confirmed; ``PaymentUnconfirmed`` if not."""
        ...

    def debit(self, uid: str, amount: Money, txn_id: str) -> Money:
        """The vend's money step in its transaction; the balance after."""
        ...

    def refund(self, uid: str, amount: Money, txn_id: str) -> Money | None:
        """Give ``amount`` back in the current transaction; ``None`` when it is owed until ``pay_back``."""
        ...

    def pay_back(self, uid: str, at: datetime) -> Money | None:
        """Pay what is owed to the card if it is at hand (outside a transaction); the balance after, if paid."""
        ...


class Hotlist(Protocol):
    """The issuer's lost-card list as the machine holds it (docs/security.md, "Lost cards")."""

    def verdict(self, uid: str, now: datetime) -> str:
        """``clear``, ``blocked`` (listed), or ``unchecked`` (no current list, and the machine refuses then)."""
        ...


class SchoolControls(Protocol):
    """The guardian controls the school pushed (docs/security.md, "Guardian controls"), as the machine holds them."""

    def guardian_for(self, uid: str) -> Guardian | None:
        """The school's controls on the card; ``None``: the school named it not, local controls hold."""
        ...

    def periods(self) -> tuple[Period, ...]:
        """The school's periods of the day, in time order."""
        ...


class GuardianAlerts(Protocol):
    """What a guardian is told through the school (docs/privacy.md): each returns the alert to seal, or None.

    Called inside the transaction of the sale or the refusal, so an alert is journaled with what caused it.
    """

    def after_sale(self, uid: str, price: int, balance: int, day: str) -> dict[str, Any] | None: ...

    def after_denial(self, uid: str, denial: Denial, day: str) -> dict[str, Any] | None: ...


# (card uid, local day, start, end) -> what the card spent on this machine in that span (its journal)
PeriodSpend = Callable[[str, str, datetime, datetime], int]


class Technicians(Protocol):
    """The route technicians' cards a machine knows, and the audit it writes for them at a tap."""

    def recognises(self, uid: str) -> bool: ...

    def export_audit(self, at: datetime) -> str:
        """Write the DEX audit of the day (EVA-DTS 6.1) where the technician collects it; the file's name."""
        ...


class IssuerLink(Protocol):
    """The way to an account's issuer: one signed request, its sealed answer, or ``None`` in time.

    ``inside`` is what only the issuer reads (the card number, the transaction, the amount, the day);
    ``kind`` is ``inquiry`` (at the tap) or ``authorise`` (the debit).
    """

    def ask(self, kind: str, inside: dict[str, Any], timeout_s: float) -> IssuerAnswer | None: ...


class Planogram(Protocol):
    """Slots as the machine believes them: product, price, stock, enabled."""

    def get(self, slot: str) -> SlotState | None: ...

    def stock(self) -> dict[str, int]: ...

    def take_one(self, slot: str) -> int: ...

    def set_stock(self, slot: str, count: int) -> None: ...

    def set_price(self, slot: str, price: int) -> None: ...

    def set_enabled(self, slot: str, enabled: bool) -> None: ...


class Vends(Protocol):
    """One record per debit, settled exactly once; the source of a card's daily spend."""

    def open(self, record: VendRecord, at: str) -> None: ...

    def settle(self, txn_id: str, status: str) -> None: ...

    def get(self, txn_id: str) -> VendRecord | None: ...

    def pending(self) -> list[VendRecord]: ...

    def spent_on(self, uid: str, local_day: str) -> int: ...

    def failed_in_a_row(self, slot: str, limit: int) -> int:
        """How many of the slot's last settled vends, counting back at most ``limit``, were refunded."""
        ...


class Books(Protocol):
    """The durable ports on one store: everything a vend writes commits together."""

    @property
    def journal(self) -> Journal: ...

    @property
    def payment(self) -> Payment: ...

    @property
    def inventory(self) -> Planogram: ...

    @property
    def vends(self) -> Vends: ...

    def apply_retention(
        self, now: datetime, today: date, records_days: int, card_days: int, per_card: bool = False
    ) -> None:
        """Forget what the configured retention no longer allows the machine to keep.

        Journal entries and command answers past ``records_days``; card numbers of settled,
        acknowledged days more than ``card_days`` before ``today`` (the machine's local date).
        """
        ...
