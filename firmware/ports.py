"""The small interfaces the controller depends on; the simulator and real drivers implement them.

Each port is a ``typing.Protocol`` so adapters need no common base class, and the controller can be
wired to virtual hardware in tests and to serial readers or MQTT in production without changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from firmware.messages import Message
from firmware.money import Money

Profile = Literal["student", "staff", "guest"]
PROFILES: tuple[str, ...] = ("student", "staff", "guest")


@dataclass(frozen=True, slots=True)
class CardTap:
    """One presentation of a card: a uid (upper-case hex), which reader saw it, and when."""

    uid: str
    reader: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Guardian:
    """Controls a guardian put on a minor's card (issue 6); all optional."""

    linked: bool = True
    daily_limit: int | None = None
    blocked_categories: tuple[str, ...] = ()
    blocked_kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CardAccount:
    """What the wallet knows about a card: never a name, only profile, balance and guardian controls."""

    uid: str
    profile: str
    balance: Money
    guardian: Guardian = field(default_factory=Guardian)


@dataclass(frozen=True, slots=True)
class SaleRequest:
    """Everything a sales policy may look at to decide one sale."""

    slot: str
    product_id: str
    product: Any  # firmware.config.catalog.Product (kept loose to avoid an import cycle)
    price: Money
    account: CardAccount
    local_time: datetime
    spent_today: Money


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a sale is refused, with the message the display shows for it."""

    reason: str
    message: Message
    detail: dict[str, Any] = field(default_factory=dict)


class Clock(Protocol):
    """Where time comes from; logic never calls ``datetime.now()`` itself."""

    def now(self) -> datetime: ...


@runtime_checkable
class CardReader(Protocol):
    """A source of card taps, like python-can's ``BusABC``: receive with a timeout, then close."""

    name: str

    def read_tap(self, timeout: float | None = None) -> CardTap | None: ...

    def close(self) -> None: ...


class Keypad(Protocol):
    """Selection keys and cancel; yields ``"A1"``-style slot codes or ``"cancel"``."""

    def read_key(self, timeout: float | None = None) -> str | None: ...


class Display(Protocol):
    """Shows one bilingual message at a time."""

    def show(self, message: Message) -> None: ...


class Dispenser(Protocol):
    """Runs a slot's motor and reports whether the drop sensor saw the product fall."""

    def vend(self, slot: str, txn_id: str) -> bool: ...

    def was_dispensed(self, txn_id: str) -> bool | None:
        """After a power cut: did this vend drop? ``None`` when the hardware cannot tell."""
        ...


class Door(Protocol):
    """The service door switch: open means a technician is inside and no sale may happen."""

    def is_open(self) -> bool: ...


class Payment(Protocol):
    """The stored-value wallet; debits and refunds join the journal's current transaction."""

    def lookup(self, uid: str) -> CardAccount | None: ...

    def debit(self, uid: str, amount: Money, txn_id: str) -> Money: ...

    def refund(self, uid: str, amount: Money, txn_id: str) -> Money: ...


class SalesPolicy(Protocol):
    """Decides whether a sale may happen; returns the first denial or ``None``."""

    def evaluate(self, request: SaleRequest) -> Denial | None: ...


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One durable fact: what happened, to which transaction, with which details."""

    kind: str
    at: datetime
    txn_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Journal(Protocol):
    """Append-only durable record; ``atomic()`` groups entries with wallet and stock changes."""

    def atomic(self, step: str) -> AbstractContextManager[None]: ...

    def append(self, entry: JournalEntry) -> int: ...

    def entries(self) -> Iterator[JournalEntry]: ...


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A report to send later: written to the outbox in the same transaction as its cause."""

    topic: str
    payload: dict[str, Any]
    retain: bool = False
    stream: str = "vendor"  # each party's stream has its own sequence numbers and acks


class Reporter(Protocol):
    """Turns journal entries into outbound reports (none, recorded, or MQTT via the outbox)."""

    def messages_for(self, entry: JournalEntry) -> list[OutboundMessage]: ...
