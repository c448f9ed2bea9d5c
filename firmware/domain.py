"""The machine's vocabulary and value types: what every layer may name without depending on another.

Each word of the campus domain (who buys, what kind of product) is spelled once here as a
``Literal`` type; config schemas, remote commands and scenarios validate against these same types,
so a new category is one edit. The value types are frozen dataclasses that cross the ports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal, NamedTuple, Protocol, get_args

from firmware.messages import Message
from firmware.money import Money

Exchange = Callable[[bytes], bytes]  # one command to the card in the field, its answer (or CardGone/CardRefused)
CardLink = Callable[[], AbstractContextManager[Exchange]]  # select the card for a few commands, release it after

# a machine id names MQTT topics, key files and certificates: one spelling for all of them
MACHINE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MACHINE_ID_RULE = "1-64 letters, digits, '-' or '_'"

# The broker users the parties' certificates are named after (simulator/servers/broker_setup.py issues
# them): each party's backend, a second instance, its people's tools, and the tests' development-only
# insiders. A machine's certificate is named after its id, so no machine may be called one of these.
PARTY_TOOLS = {"vendor": "vendor-ops", "issuer": "issuer-ops", "school": "school-ops"}
PARTY_BROKER_USERS: dict[str, tuple[str, ...]] = {
    "vendor": ("vendor", "vendor-2", PARTY_TOOLS["vendor"]),
    "issuer": ("issuer", "issuer-2", PARTY_TOOLS["issuer"]),
    "school": ("school", PARTY_TOOLS["school"]),
    "insider": ("insider", "insider-2", "insider-3"),
}
RESERVED_MACHINE_IDS = frozenset(name for names in PARTY_BROKER_USERS.values() for name in names)


def machine_id_refusal(machine: str) -> str | None:
    """Why ``machine`` cannot be a machine's id (its spelling, or a party's broker user), or None."""
    if not MACHINE_ID.fullmatch(machine):
        return f"a machine id is {MACHINE_ID_RULE}"
    if machine in RESERVED_MACHINE_IDS:
        return "that is a party's broker user (a machine's certificate is named after its id)"
    return None


# a transaction id: the machine's id and 16 random hex digits (firmware/journal/ledger.py ``next_txn_id``)
TXN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}-[0-9a-f]{16}$")


def txn_of(machine: str, txn: str) -> bool:
    """Whether ``txn`` is a transaction id ``machine`` made: ``<machine>-<16 hex digits>``."""
    return TXN_ID.fullmatch(txn) is not None and txn.rsplit("-", 1)[0] == machine


# a school's code (the MOE's six characters): in machine configs, on the card record a campus card carries
# (six bytes: firmware/cards/purse.py), and in the topic the school's controls are pushed on
SCHOOL_CODE = re.compile(r"^[A-Za-z0-9]{1,6}$")
SCHOOL_CODE_RULE = "1-6 letters or digits"

# a card named under a party's key (HMAC, 128 bits in lower-case hex; firmware/identity/pseudonym.py): the issuer's
# hotlist entries and credits, the school's controls, a vendor's technician cards -- never the uid itself
CARD_NAME = re.compile(r"^[0-9a-f]{32}$")

# the years a simulated run may be set in: a campus card counts its days from 2000 (firmware/cards/purse.py), and
# near the year 9999 a machine's day close overflowed (exit 70)
FIRST_YEAR, LAST_YEAR = 2000, 2099

# a whole number as typed into an option, a roster or a control line: ASCII digits (``str.isdigit`` also takes
# '²' and '①', which ``int`` refuses)
WHOLE_NUMBER = re.compile(r"^[0-9]+$")


def typed_integer(text: str) -> int | None:
    """``text`` as a whole number with an optional minus, or None.

    ``int`` alone also takes "1_0", " 5" and other scripts' digits. A negative one is still a number, so its
    range check can name it.
    """
    return int(text) if WHOLE_NUMBER.fullmatch(text.removeprefix("-")) else None


# a card's uid as a reader gives it, in upper-case hex: ISO/IEC 14443-A's 4, 7 or 10 bytes (a PN532's cards)
# or EM4100's 5 (125 kHz tags, an RDM6300's); scenarios, rosters, accounts, the hotlist and the wire agree on it
CARD_UID = re.compile(r"^(?:[0-9A-F]{8}|[0-9A-F]{10}|[0-9A-F]{14}|[0-9A-F]{20})$")
CARD_UID_RULE = "4, 5, 7 or 10 bytes of hex (8, 10, 14 or 20 hex digits)"

Profile = Literal["student", "staff", "guest"]
Category = Literal["drink", "dairy", "snack", "bakery", "stationery"]
# what a product is, as the campus food rules read it (docs/rules.md): a drink's kind, or a food's
DrinkKind = Literal[
    "fresh_milk",
    "uht_milk",
    "soy_milk",
    "yogurt_drink",
    "juice_100",
    "packaged_water",
    "mineral_water",
    "tea",
    "coffee",
    "sports_drink",
    "soda",
    "flavoured_milk",
    "lactic_drink",
]
FoodKind = Literal["egg", "bread", "biscuit", "rice_product", "snack", "fruit", "meal", "non_food"]
Kind = Literal[DrinkKind, FoodKind]
SchoolLevel = Literal["elementary", "junior_high", "senior_high"]
# Taiwan's 11 food-allergen labelling categories (食品過敏原標示規定, in force 2020-07-01; docs/rules.md)
Allergen = Literal[
    "crustacea", "mango", "peanut", "milk", "egg", "nuts", "sesame", "gluten", "soybean", "fish", "sulphites"
]

PROFILES: tuple[Profile, ...] = get_args(Profile)
CATEGORIES: tuple[Category, ...] = get_args(Category)
KINDS: tuple[Kind, ...] = get_args(Kind)
DRINK_KINDS: tuple[DrinkKind, ...] = get_args(DrinkKind)
BOTTLED_WATER_KINDS: tuple[DrinkKind, ...] = ("packaged_water", "mineral_water")
DRINK_CATEGORIES: tuple[Category, ...] = ("drink", "dairy")  # milk and drinking yogurt are dairy
SCHOOL_LEVELS: tuple[SchoolLevel, ...] = get_args(SchoolLevel)
ALLERGENS: tuple[Allergen, ...] = get_args(Allergen)


@dataclass(frozen=True, slots=True)
class CardTap:
    """One presentation of a card: a uid (upper-case hex), which reader saw it, and when.

    ``link`` reaches the card while it stays in the field (a PN532's InDataExchange, or a card model
    in the simulator): what a stored-value purse is read and debited through. Readers that only
    read an id (RDM6300, keyboard wedges) leave it ``None``.
    """

    uid: str
    reader: str
    at: datetime
    link: CardLink | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Guardian:
    """Controls a guardian put on a minor's card; all optional."""

    linked: bool = True
    daily_limit: int | None = None
    blocked_categories: tuple[str, ...] = ()
    blocked_kinds: tuple[str, ...] = ()
    blocked_allergens: tuple[str, ...] = ()  # products that contain or may contain one are refused
    period_limits: tuple[tuple[str, int], ...] = ()  # (period, most spent in it): the school names its periods
    low_balance: int | None = None  # below this balance after a sale the guardian is told (through the school)


@dataclass(frozen=True, slots=True)
class Period:
    """A part of the school day the school names (breakfast, lunch, ...): local time, start inclusive."""

    name: str
    start: time
    end: time

    def holds(self, at: time) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class SpendStep:
    """One step of a card's own log as a period limit reads it: when, and the day's spend after it."""

    at: datetime
    day_spent: int


@dataclass(frozen=True, slots=True)
class CardAccount:
    """What the wallet knows about a card: never a name, only profile, balance and guardian controls."""

    uid: str
    profile: str
    balance: Money
    guardian: Guardian = field(default_factory=Guardian)
    # the day's spend as the card's own log says (stored value on the card: every machine's purchases);
    # None where the machine's journal counts the day (the machine's wallet)
    spent_today: Money | None = None
    # an issuer-held account while the issuer cannot be reached: ``balance`` is what the card may
    # still spend offline today, and a price above it is refused as ``offline_limit`` (of this many)
    offline_limit: int | None = None
    # stored value on the card: the steps of the card's log on the day of ``spent_today``, newest first
    # (a period limit counts them across machines); None where the card carries no log
    card_log: tuple[SpendStep, ...] | None = None


@dataclass(frozen=True, slots=True)
class IssuerAnswer:
    """The issuer's word on an account (``payment: {mode: account}``), opened from its sealed answer.

    An inquiry is answered with the account's profile, balance, whether a guardian's consent is on
    record (``linked``), the guardian's daily cap and the day's spend; an authorisation with
    ``approved`` and, when declined, a denial reason the display shows (``firmware.messages``).
    """

    approved: bool
    reason: str | None = None
    details: dict[str, int] = field(default_factory=dict)
    profile: str | None = None
    balance: int | None = None
    linked: bool = True
    daily_limit: int | None = None
    spent_today: int = 0


class ProductFacts(Protocol):
    """What a sales policy reads of a product (the catalog's ``Product`` has these and more)."""

    @property
    def category(self) -> str: ...

    @property
    def kind(self) -> str | None: ...

    @property
    def profiles(self) -> Sequence[str]: ...

    @property
    def allergens(self) -> Sequence[str]: ...

    @property
    def may_contain(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class SaleRequest:
    """Everything a sales policy may look at to decide one sale."""

    slot: str
    product_id: str
    product: ProductFacts
    price: Money
    account: CardAccount
    local_time: datetime
    spend: Callable[[], Money]  # the card's spend that local day: a query, asked only by a rule with a limit

    @property
    def spent_today(self) -> Money:
        """What the card spent on the request's local day (debited or completed), read when a rule asks."""
        return self.spend()


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a sale is refused, with the message the display shows for it."""

    reason: str
    message: Message
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SlotState:
    """One slot of the planogram as the machine believes it."""

    slot: str
    product: str
    capacity: int
    stock: int
    price: int
    enabled: bool


VendStatus = Literal["debited", "completed", "refunded"]


@dataclass(frozen=True, slots=True)
class VendRecord:
    """One debit on its way to exactly one settlement (completed or refunded)."""

    txn_id: str
    slot: str
    product: str
    price: int
    uid: str
    status: str
    local_day: str
    profile: str = ""  # the card's, as read at the tap: recovery journals the visit without the card at hand


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One durable fact: what happened, to which transaction, with which details."""

    kind: str
    at: datetime
    txn_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


Stream = Literal["vendor", "issuer", "school"]  # who receives and acknowledges a run of reports
STREAMS: tuple[str, ...] = get_args(Stream)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A report to send later: written to the outbox in the same transaction as its cause."""

    topic: str
    payload: dict[str, Any]
    retain: bool = False
    stream: str = "vendor"  # each party's stream has its own sequence numbers and acks
    release_at: datetime | None = None  # held until then, then numbered and sent with its window (privacy)


class Credit(NamedTuple):
    """An issuer's pending credit for a purse card, as its list names it.

    Its seq for the card, the amount, and the card day of the purchase it gives back (None: it gives
    back money only, as a verdict on a torn step does).
    """

    seq: int
    amount: int
    bought: str | None = None
