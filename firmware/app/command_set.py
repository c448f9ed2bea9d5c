"""Every remote command, declared once: name, body schema, the party it belongs to, apply, operator's words.

The command gate (authority), the processor (validation and apply), ``vending cmd send`` (usage and
parsing), the broker's ACL (who may write which command topic) and the test against docs/asyncapi.yaml
all read ``COMMAND_SET``; adding a command is one ``CommandSpec`` here and its schema in the AsyncAPI file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError

from firmware.app.command_gate import Refused, SignedCommand
from firmware.config.machine import Lockout, MachineConfig, parse_lockouts, with_lockouts
from firmware.config.source import MAX_FILE_BYTES, Strict, dotted, first_error
from firmware.controller.session import Controller
from firmware.domain import TXN_ID, SlotState, typed_integer
from firmware.entries import SaleEntry
from firmware.files import read_capped
from firmware.identity.signing import SignatureError, TrustStore
from firmware.journal.books import MachineBooks
from firmware.money import Money
from firmware.reporting.wire import WireError, parse_object

LOCKOUTS_SETTING = "lockouts"


# ---- bodies (the wire names; docs/asyncapi.yaml's cmd-* schemas state the same limits) ---------------------
class Restock(SignedCommand):
    slots: dict[str, Annotated[int, Field(ge=0)]] = Field(min_length=1)


class SetPrice(SignedCommand):
    slot: str
    price: int = Field(gt=0, le=100_000)


class SlotCommand(SignedCommand):
    slot: str


class SetLockout(SignedCommand):
    lockouts: list[Lockout] = Field(max_length=16)


class Envelope(Strict):
    """A JWS as every message carries it (docs/asyncapi.yaml ``signed``): here, the school's approval."""

    protected: str = Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=512)
    payload: str
    signature: str = Field(pattern=r"^[A-Za-z0-9_-]{86}$")


class Refund(SignedCommand):
    txn: str = Field(pattern=TXN_ID.pattern)  # the sale, as its report named it
    amount: int = Field(ge=1, le=100_000)
    # above the machine's refund_school_above: the school's signed {approve: refund, machine, txn, amount}
    approval: Envelope | None = None


# ---- what each does, inside the transaction that journals its answer ------------------------------------
def _slot(books: MachineBooks, slot: str) -> SlotState:
    state = books.inventory.get(slot)
    if state is None:
        raise Refused(f"unknown slot {slot!r}")
    return state


def _restock(books: MachineBooks, controller: Controller, command: Restock) -> None:
    for slot, count in command.slots.items():  # every slot checked before any is changed
        state = _slot(books, slot)
        if not 0 <= count <= state.capacity:
            raise Refused(f"slots.{slot}: count {count} is outside 0..{state.capacity}")
    for slot, count in command.slots.items():
        books.inventory.set_stock(slot, count)


def _set_price(books: MachineBooks, controller: Controller, command: SetPrice) -> None:
    _slot(books, command.slot)
    books.inventory.set_price(command.slot, command.price)


def _enabler(enabled: bool) -> Callable[[MachineBooks, Controller, SlotCommand], None]:
    def apply(books: MachineBooks, controller: Controller, command: SlotCommand) -> None:
        _slot(books, command.slot)
        books.inventory.set_enabled(command.slot, enabled)

    return apply


def _set_lockout(books: MachineBooks, controller: Controller, command: SetLockout) -> None:
    """Persisted with the answer in one transaction, and in force from the next sale."""
    specs = [lockout.model_dump(by_alias=True) for lockout in command.lockouts]
    books.journal.save_setting(LOCKOUTS_SETTING, json.dumps(specs, sort_keys=True))
    controller.apply_setup(with_lockouts(controller.setup, command.lockouts))


def _refund(books: MachineBooks, controller: Controller, command: Refund) -> None:
    """Credit the card of a completed sale (inside the command's transaction), once per sale.

    In the machine's wallet at once; on a purse card through the issuer, which lists it for the first
    machine of the school the card meets (firmware/reporting/credits.py); on an issuer-held account through
    the issuer, which gives the debit back. Takings drop by the same amount, the vendor hears of it as a
    ``credited`` sale and the issuer in the day's settlement.
    """
    record = books.vends.get(command.txn)
    if record is None:
        raise Refused(f"txn {command.txn}: no sale of this machine (its books may have forgotten it)")
    if record.status != "completed":
        raise Refused(f"txn {command.txn}: {record.status}, not a completed sale (a jam is refunded by itself)")
    if (done := books.vends.refunded(command.txn)) is not None:
        raise Refused(f"txn {command.txn}: already refunded NT${done}")
    if command.amount > record.price:
        raise Refused(f"amount {command.amount}: more than the sale's price ({record.price})")
    mode = controller.config.payment.mode
    if mode == "account" and command.amount != record.price:
        raise Refused(f"an issuer-held account is refunded whole: amount {record.price}")
    money = Money(command.amount, controller.config.currency)
    at = controller.now()
    if mode != "card":  # a purse card's credit goes to the issuer with the report of this refund (reporter.py)
        books.payment.refund(record.uid, money, command.txn)  # the wallet at once; the issuer's account
    books.vends.grant_refund(command.txn, command.amount, at.astimezone(controller.config.zone).date().isoformat(),
                             at.isoformat())  # fmt: skip
    sale = SaleEntry(slot=record.slot, product=record.product, price=command.amount)
    books.journal.append(controller.entry("operator_refund", command.txn, **sale.data()))


def _refund_cosigned(command: Refund, authorities: TrustStore, config: MachineConfig) -> None:
    """Above the configured amount, the school's signature too: the vendor alone cannot move a family's money."""
    if command.amount <= config.security.refund_school_above:
        return
    if command.approval is None:
        raise Refused(f"a refund above NT${config.security.refund_school_above} needs the school's approval")
    try:
        signed = authorities.verify(command.approval.model_dump(), parties=("school",))
        body = parse_object(signed.payload, 1024)
    except (SignatureError, WireError) as exc:
        raise Refused(f"approval: {exc}") from None
    wanted = {"approve": "refund", "machine": config.id, "txn": command.txn, "amount": command.amount}
    if body != wanted:
        raise Refused("approval: the school approved another refund")


def stored_lockouts(books: MachineBooks) -> list[Lockout] | None:
    """The lockout windows a remote ``set_lockout`` left in force, if any (they outlive a restart)."""
    stored = books.journal.setting(LOCKOUTS_SETTING)
    return parse_lockouts(json.loads(stored)) if stored is not None else None


# ---- the operator's words (``vending cmd send NAME WORDS...``) ------------------------------------------
def _whole(word: str, what: str) -> int:
    if (value := typed_integer(word)) is None:
        raise ValueError(f"{what} must be a whole number, got {word!r}")
    return value


def _restock_words(words: list[str]) -> dict[str, Any] | None:
    if not words or not all("=" in word for word in words):
        return None
    pairs = [word.split("=", 1) for word in words]
    slots = [slot for slot, _ in pairs]
    if twice := next((slot for slot in slots if slots.count(slot) > 1), None):
        raise ValueError(f"slot {twice!r} is given twice: which count is meant?")
    return {"slots": {slot: _whole(count, f"the count for {slot}") for slot, count in pairs}}


def _price_words(words: list[str]) -> dict[str, Any] | None:
    return {"slot": words[0], "price": _whole(words[1], "PRICE")} if len(words) == 2 else None


def _slot_words(words: list[str]) -> dict[str, Any] | None:
    return {"slot": words[0]} if len(words) == 1 else None


def _lockout_words(words: list[str]) -> dict[str, Any] | None:
    if len(words) != 1:
        return None
    if words[0] == "none":
        return {"lockouts": []}
    try:
        loaded = yaml.safe_load(read_capped(Path(words[0]), MAX_FILE_BYTES))
    except OSError as exc:
        raise ValueError(f"cannot read {words[0]}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{words[0]} is not YAML: {exc}") from None
    lockouts = loaded.get("lockouts") if isinstance(loaded, dict) else loaded
    if not isinstance(lockouts, list):
        held = "nothing" if lockouts is None else "a mapping" if isinstance(lockouts, dict) else repr(lockouts)[:40]
        raise ValueError(f"{words[0]} holds {held}, not a list of lockouts")
    if not lockouts:  # an empty file lifted the lunchtime lockout as quietly as a list of them set it
        raise ValueError(f"{words[0]} lists no lockout; to lift every lockout, say so: set_lockout none")
    return {"lockouts": lockouts}


def _refund_words(words: list[str]) -> dict[str, Any] | None:
    if len(words) == 2:
        return {"txn": words[0], "amount": _whole(words[1], "AMOUNT")}
    if len(words) == 3 and words[1] == "--amount":  # `vending cmd send refund TXN --amount N`
        return {"txn": words[0], "amount": _whole(words[2], "--amount")}
    return None


@dataclass(frozen=True)
class CommandSpec:
    """One remote command. ``apply`` raises ``Refused`` to change nothing; ``words`` gives None when they don't fit."""

    name: str
    body: type[SignedCommand]
    authority: str  # the one party whose signature it needs: vendor (stock, prices, slots) or school (lockouts)
    apply: Callable[[MachineBooks, Controller, Any], None]
    usage: str
    words: Callable[[list[str]], dict[str, Any] | None]
    # a second party's signature inside the command, checked before it is applied (a refund's school approval)
    cosigned: Callable[[Any, TrustStore, MachineConfig], None] | None = None
    # what the machine's event of the applied command tells beyond its answer (never on the wire): a
    # refund's sale and amount, which a run's or an operator's tally of the machine's money counts
    told: Callable[[Any], dict[str, Any]] | None = None


COMMAND_SET: tuple[CommandSpec, ...] = (
    CommandSpec("restock", Restock, "vendor", _restock, "restock SLOT=COUNT [SLOT=COUNT ...]", _restock_words),
    CommandSpec("set_price", SetPrice, "vendor", _set_price, "set_price SLOT PRICE", _price_words),
    CommandSpec("enable_slot", SlotCommand, "vendor", _enabler(True), "enable_slot SLOT", _slot_words),
    CommandSpec("disable_slot", SlotCommand, "vendor", _enabler(False), "disable_slot SLOT", _slot_words),
    CommandSpec(
        "set_lockout",
        SetLockout,
        "school",
        _set_lockout,
        "set_lockout FILE (YAML list of lockouts, as in a machine config) | set_lockout none",
        _lockout_words,
    ),
    CommandSpec(
        "refund",
        Refund,
        "vendor",
        _refund,
        "refund TXN --amount N (above the machine's refund_school_above, with --approval FILE from the school)",
        _refund_words,
        _refund_cosigned,
        lambda command: {"txn": command.txn, "amount": command.amount},
    ),
)
BY_NAME: Mapping[str, CommandSpec] = {spec.name: spec for spec in COMMAND_SET}


COMMANDS: tuple[str, ...] = tuple(BY_NAME)
AUTHORITY: Mapping[str, str] = {spec.name: spec.authority for spec in COMMAND_SET}


def validated(name: str, body: dict[str, Any]) -> SignedCommand:
    """``body`` as command ``name``, by the wire names only, or ``Refused`` naming the field and the reason.

    The machine checks every command it is sent with this; the operator's tools check theirs with it
    before signing, so a count or a price the machine would refuse is named at once, and never sent.
    """
    try:
        return BY_NAME[name].body.model_validate(body, by_alias=True, by_name=False)
    except ValidationError as exc:
        loc, reason = first_error(exc)
        raise Refused(f"{dotted(loc) or 'payload'}: {reason}") from None


def commands_of(party: str) -> list[str]:
    """The commands ``party`` may give (the broker's ACL lets it write exactly their topics)."""
    return [spec.name for spec in COMMAND_SET if spec.authority == party]


def fields_from_words(name: str, words: list[str]) -> dict[str, Any]:
    """A command's own fields from the operator's words; ``ValueError`` naming the usage if they don't fit."""
    spec = BY_NAME.get(name)
    if spec is None:
        raise ValueError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    try:
        fields = spec.words(words)
    except ValueError as exc:
        raise ValueError(f"{name} {' '.join(words)}: {exc}; usage: {spec.usage}") from None
    if fields is None:
        raise ValueError(f"usage: {spec.usage}")
    return fields
