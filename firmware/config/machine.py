"""The machine config: identity, school, timezone, planogram, lockouts and timeouts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from firmware.config.catalog import Catalog, load_catalog
from firmware.config.rules import RuleSet, find_rulesets, is_rule_file
from firmware.config.source import Strict, YamlDoc, dotted, first_error, listed_twice, read_yaml, validate
from firmware.domain import (
    CARD_NAME,
    MACHINE_ID,
    MACHINE_ID_RULE,
    SCHOOL_CODE,
    SCHOOL_CODE_RULE,
    Category,
    Profile,
    SchoolLevel,
    machine_id_refusal,
)
from firmware.errors import InputError, VendingError

SLOT_CODE = re.compile(r"^[A-Z][0-9]{1,2}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_COMMAND_LIFETIME = 86_400  # s: the longest a remote command may live on any machine (``command_lifetime``)


def parse_hhmm(value: object) -> time:
    if not isinstance(value, str):
        raise ValueError(f'expected a time as a quoted "HH:MM" string, got {value!r}')
    match = HHMM.fullmatch(value)
    if not match:
        raise ValueError(f'expected a time as "HH:MM" (00:00-23:59), got {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


def whole(pattern: re.Pattern[str], refusal: str) -> AfterValidator:
    """A text field held to ``pattern`` whole (``fullmatch``), refused with ``refusal``, not the pattern's text."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(refusal)
        return value

    return AfterValidator(check)


SchoolCode = Annotated[
    str, whole(SCHOOL_CODE, f"a school code is {SCHOOL_CODE_RULE} (the MOE's; a campus card's record holds six)")
]


class School(Strict):
    code: SchoolCode  # the MOE school code: part of the school's topics, and on its campus cards' records
    level: SchoolLevel
    # who answers data-protection requests, shown by the privacy notice (the school, never the vendor)
    privacy_contact: str = Field(default="the school office (學校教務處)", min_length=1, max_length=120)


class TimeWindow(Strict):
    """``from`` and ``to`` in local time, "HH:MM", from before to: a lockout, a period of the school day."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, value: object) -> str:
        parse_hhmm(value)
        return str(value)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if parse_hhmm(self.start) >= parse_hhmm(self.end):
            raise ValueError(f"'from' {self.start} must be before 'to' {self.end}")
        return self


class Lockout(TimeWindow):
    """A daily window in local time when some profiles may not buy some categories; start inclusive."""

    profiles: list[Profile] = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)
    reason: str = Field(default="lunch_lockout", pattern=r"^[a-z][a-z0-9_]{0,31}$")

    @property
    def start_time(self) -> time:
        return parse_hhmm(self.start)

    @property
    def end_time(self) -> time:
        return parse_hhmm(self.end)


class Slot(Strict):
    product: str = Field(min_length=1)
    capacity: int = Field(gt=0, le=100)
    stock: int = Field(ge=0, le=100)
    price: int | None = Field(default=None, gt=0, le=100_000)
    enabled: bool = True
    # a product the food rules refuse, kept on purpose (a demonstration of the refusal): `vending check
    # --strict` accepts it, and the machine still refuses to sell it
    refused_on_purpose: bool = False

    @model_validator(mode="after")
    def _fits(self) -> Slot:
        if self.stock > self.capacity:
            raise ValueError(f"stock {self.stock} is more than capacity {self.capacity}")
        return self


class Timeouts(Strict):
    """Seconds; MDB readers time out a selection, so do we."""

    card: int = Field(default=30, ge=1, le=600)
    selection: int = Field(default=30, ge=1, le=600)
    # after a denial the card stays only this long, so a stranger cannot buy on it (default 10 s)
    reselect: int = Field(default=10, ge=1, le=600)
    session: int = Field(default=120, ge=5, le=3600)


class Trust(Strict):
    """The public keys this machine obeys (paths relative to the config file; see docs/security.md)."""

    vendor: str  # signs stock, price and slot commands, and acks the vendor stream
    school: str  # signs lunch lockouts
    issuer: str  # acks the issuer stream
    issuer_seal: str  # X25519: settlements are sealed to it

    def paths(self, config_path: Path) -> tuple[Path, Path, Path, Path]:
        base = config_path.parent
        return base / self.vendor, base / self.school, base / self.issuer, base / self.issuer_seal


class Security(Strict):
    """Limits on remote commands."""

    commands_per_minute: int = Field(default=12, ge=1, le=600)  # per signer, bursts of 5
    command_lifetime: int = Field(default=3600, ge=60, le=MAX_COMMAND_LIFETIME)  # seconds from issue to expiry, at most
    # an operator's refund above this many TWD also needs the school's signature (`vending school approve-refund`)
    refund_school_above: int = Field(default=100, ge=0, le=100_000)


class Reporting(Strict):
    """How the outbox travels when several reports wait: batches of at most this many reports and bytes.

    A single waiting report always goes out at once on its own; see firmware/reporting/batches.py.
    """

    batch_reports: int = Field(default=500, ge=1, le=1000)
    batch_bytes: int = Field(default=64 * 1024, ge=4096, le=64 * 1024)  # the whole MQTT message


class Retention(Strict):
    """How long the machine keeps what it knows, applied at each day's close (docs/privacy.md)."""

    records_days: int = Field(default=90, ge=1, le=3650)  # journal entries and answered commands
    card_days: int = Field(default=7, ge=1, le=3650)  # raw card numbers in vends, once the day is settled and acked

    @model_validator(mode="after")
    def _cards_go_first(self) -> Retention:
        # forgetting card numbers looks for the day's close in the journal: it must still be there
        if self.card_days > self.records_days:
            raise ValueError(f"card_days ({self.card_days}) must not exceed records_days ({self.records_days})")
        return self


PaymentMode = Literal["machine_wallet", "card", "account"]
PAYMENT_MODES: tuple[str, ...] = get_args(PaymentMode)


class PaymentSetup(Strict):
    """Where cards' money lives (docs/payments.md).

    ``card``: stored value on the card's MIFARE purse, read and debited through a PN532 (the Taipei
    pilot's model: every machine, shop and bus debits the same purse); the secure access module's key
    is the state dir's ``card-master.key``, never in this file. ``machine_wallet``: the machine keeps
    each card's balance itself, seeded from a card list: a closed loop for demos and one-machine sites.
    ``account``: the balance lives at the issuer (an e-payment account, a minor's only with a
    guardian's consent); the machine asks the issuer at each tap and debit, and when no answer comes
    within ``timeout_ms`` it approves up to ``offline_limit`` per card and local day, captured later.
    """

    mode: PaymentMode = "machine_wallet"
    timeout_ms: int = Field(default=300, ge=10, le=10_000)
    offline_limit: int = Field(default=100, ge=0)


class TechnicianSetup(Strict):
    """Route technicians' cards: a tap opens service mode, writes the DEX audit, records the refill.

    Never a payment: a technician card is recognised before any wallet is asked (docs/dex.md).
    """

    key: str  # the vendor's technician key file (hex), relative to this config
    cards: list[str] = Field(min_length=1, max_length=256)  # HMAC-SHA256(key, "technician|" uid)[:16], hex
    dex_dir: str = "dex"  # where each visit's DEX audit is written, relative to the machine's state dir

    @field_validator("cards")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not CARD_NAME.fullmatch(name):
                raise ValueError(f"{name[:40]!r}: a technician card is listed by its 32-hex-digit name "
                                 "(`vending keys technician --key FILE --card UID` prints it)")  # fmt: skip
        if listed_twice(value) is not None:
            raise ValueError("a technician card is listed twice")
        return value

    def key_path(self, config_path: Path) -> Path:
        return config_path.parent / self.key


class HotlistSetup(Strict):
    """The issuer's lost-card list (docs/security.md, "Lost cards"): checked before every sale.

    ``when_stale``: what the machine does when its list is past its expiry (or it never received
    one): ``refuse`` every card it cannot check (the default), or ``allow`` them and say so in its status.
    """

    when_stale: Literal["refuse", "allow"] = "refuse"


def _not_a_party(machine: str) -> str:
    """A machine named ``vendor`` or ``school`` ran on the embedded broker and was refused only at enrolment."""
    if (refusal := machine_id_refusal(machine)) is not None:
        raise ValueError(f"machine id {machine!r}: {refusal}")
    return machine


class MachineConfig(Strict):
    id: Annotated[
        str,
        whole(MACHINE_ID, f"machine id must be {MACHINE_ID_RULE} (it is part of MQTT topics)"),
        AfterValidator(_not_a_party),
    ]
    school: School
    # where the machine stands, for the route driver and the operator's dashboard (never a person's data)
    location: str = Field(default="", max_length=80)
    timezone: str
    # whole New Taiwan dollars, the only money the machine knows: prices, commands and reports are whole
    # dollars, a purse card holds NT$, a DEX file says 0 decimals and 901; "USD" was taken and meant none of it
    currency: Literal["TWD"] = "TWD"
    catalog: str
    lockouts: list[Lockout] = []
    slots: dict[str, Slot] = Field(min_length=1)
    timeouts: Timeouts = Timeouts()
    low_stock: int = Field(default=2, ge=0, le=100)
    # a slot whose last this many vends did not drop leaves sale until the vendor enables it (0: never)
    jam_limit: int = Field(default=2, ge=0, le=100)
    rules: list[str] = Field(min_length=1)  # the food rules every sale is held to: required (fail closed)

    @field_validator("rules")
    @classmethod
    def _rules_once(cls, value: list[str]) -> list[str]:
        if (twice := listed_twice(value)) is not None:
            raise ValueError(f"rule set {twice!r} is listed twice")
        return value

    # day_total: the day's total and the list of cards, no per-card amounts; per_card: the day's total,
    # and each card's (uid, amount, count) per four-week settlement period -- per-day or per-week card
    # lines let an issuer + vendor join pin lone sales (docs/privacy.md)
    settlement: Literal["per_card", "day_total"] = "day_total"
    # sales and denials reach the vendor at the end of each window of this many minutes, shuffled, timed
    # to the window: who came first cannot be read off the records (docs/privacy.md); 0 sends each at once
    release_minutes: int = Field(default=15, ge=0, le=120)
    trust: Trust | None = None  # without it, a machine that reports needs `--trust DIR` (vending serve)
    security: Security = Security()
    retention: Retention = Retention()
    reporting: Reporting = Reporting()
    payment: PaymentSetup = PaymentSetup()
    hotlist: HotlistSetup | None = None  # the issuer's lost-card list; None: this machine checks none
    # whose guardian controls hold: the machine's own (cards.yaml), or also the school's signed pushes during
    # the term (docs/security.md, "Guardian controls"; needs the school's controls.key beside the trusted keys)
    controls: Literal["local", "school"] = "local"
    technicians: TechnicianSetup | None = None  # route technicians' cards: service mode, DEX audit, refill

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Asia" is a directory of zones (fuzz find)
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Asia/Taipei)") from None
        return value

    @field_validator("slots")
    @classmethod
    def _slot_codes(cls, value: dict[str, Slot]) -> dict[str, Slot]:
        for code in value:
            if not isinstance(code, str) or not SLOT_CODE.fullmatch(code):
                raise ValueError(f"slot code {code!r} must be a letter and one or two digits, like A1")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class MachineSetup:
    """A validated machine config with its catalog and rule sets resolved: what the controller is built from."""

    config: MachineConfig
    catalog: Catalog
    path: Path
    rulesets: tuple[RuleSet, ...] = ()

    def __post_init__(self) -> None:
        named = tuple(self.config.rules)
        if len(self.rulesets) != len(named) or any(
            not is_rule_file(entry) and ruleset.id != entry for entry, ruleset in zip(named, self.rulesets, strict=True)
        ):
            raise ValueError(f"rule sets {[r.id for r in self.rulesets]} do not match the config's {self.config.rules}")

    def price_of(self, slot: str) -> int:
        spec = self.config.slots[slot]
        return spec.price if spec.price is not None else self.catalog.products[spec.product].price


def with_lockouts(setup: MachineSetup, lockouts: list[Lockout]) -> MachineSetup:
    """The same machine with other lockout windows (a remote ``set_lockout``)."""
    return MachineSetup(
        setup.config.model_copy(update={"lockouts": lockouts}), setup.catalog, setup.path, setup.rulesets
    )


def with_payment_mode(setup: MachineSetup, mode: str) -> MachineSetup:
    """The machine paying from ``mode``: a run's or a scenario's override of its ``payment: {mode: ...}``."""
    if mode not in PAYMENT_MODES:
        raise VendingError(f"payment mode {mode!r}: one of {', '.join(PAYMENT_MODES)}")
    payment = setup.config.payment.model_copy(update={"mode": mode})
    return MachineSetup(setup.config.model_copy(update={"payment": payment}), setup.catalog, setup.path, setup.rulesets)


def parse_lockouts(specs: list[dict[str, object]]) -> list[Lockout]:
    """Lockout windows from their wire/JSON form; a ``ValueError`` names the first bad field."""
    try:
        return [Lockout.model_validate(spec) for spec in specs]
    except ValidationError as exc:
        loc, reason = first_error(exc)
        where = dotted(loc)
        raise ValueError(f"lockouts: {where + ': ' if where else ''}{reason}") from None


def load_machine(path: Path, display_name: str | None = None) -> MachineSetup:
    """Load and cross-check a machine config and the catalog it names."""
    doc = read_yaml(path, display_name)
    config = validate(MachineConfig, doc)
    catalog_path = (path.parent / config.catalog).resolve()
    if not catalog_path.is_file():
        raise doc.error(("catalog",), f"catalog file not found: {config.catalog}")
    catalog = load_catalog(catalog_path, _relative_name(display_name or str(path), config.catalog))
    for code, slot in config.slots.items():
        if slot.product not in catalog.products:
            raise doc.error(("slots", code, "product"), f"unknown product {slot.product!r} (not in {config.catalog})")
    return MachineSetup(config, catalog, path, _load_rules(doc, config, catalog, path.parent))


def _load_rules(doc: YamlDoc, config: MachineConfig, catalog: Catalog, base: Path) -> tuple[RuleSet, ...]:
    """Rule sets must exist and load; food in the slots needs a kind when rules are on."""
    if not config.rules:
        return ()
    rulesets = find_rulesets(config.rules, base)  # packaged sets, or the school's own beside the config
    if isinstance(rulesets, tuple):
        index, reason = rulesets
        raise doc.error(("rules", index), reason)
    for code, slot in config.slots.items():
        product = catalog.products[slot.product]
        if product.kind is None and product.category != "stationery":
            raise doc.error(
                ("slots", code, "product"), f"product {slot.product!r} has no `kind`; the food rules need it"
            )
    return tuple(rulesets)


def _relative_name(config_name: str, relative: str) -> str:
    return os.path.normpath(Path(config_name).parent / relative)


def ensure_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(str(path), None, "", "file not found")
