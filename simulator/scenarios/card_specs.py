"""A scenario's cards, and what they are in each payment mode: purse cards (``card``), issuer accounts (``account``).

A card of a run gives its starting money as ``balance`` (the machine's wallet), ``purse`` (on the
card) or ``account`` (held by the issuer, with the holder's date of birth and a guardian's consent
and cap). ``vending run --payment card|account`` makes any scenario's cards into the mode's kind:
a purse of the same money, or an account of the same money whose holder is an adult for a staff
card and a 15-year-old with a guardian linked for a student card (unless the card's guardian
declined: ``guardian: {linked: false}``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field, field_validator, model_validator

from firmware.cards import purse
from firmware.config.controls import GuardianControls
from firmware.config.source import Strict
from firmware.domain import CARD_UID, CARD_UID_RULE, Profile

STUDENT_AGE = 15  # a minor in Taiwan (majority at 18 since 2023), old enough for an e-payment account
STAFF_BORN = date(1980, 1, 1)


class AccountSpec(Strict):
    """An issuer-held account (``payment: account``): opened, topped up, linked and capped by the issuer."""

    balance: int = Field(ge=0, le=1_000_000)
    born: date
    guardian: str | None = None  # the guardian's account: their consent (a minor pays only with one)
    cap: int | None = Field(default=None, ge=0, le=100_000)  # the guardian's cap per day
    paused: bool = False


def parse_uid(value: object) -> str:
    if not isinstance(value, str) or not CARD_UID.fullmatch(value.upper()):
        raise ValueError(f"uid must be {CARD_UID_RULE}")
    return value.upper()


def purse_card_problem(uid: str, profile: str, money: int) -> tuple[str, str] | None:
    """Why a card cannot be a MIFARE Classic 1K campus purse card (field, reason), or None."""
    if (problem := purse.uid_problem(bytes.fromhex(uid))) is not None:
        return "uid", f"a purse card (payment: card): {problem}"
    if profile not in purse.PROFILES:
        return "profile", f"a purse card is issued to one of {', '.join(purse.PROFILES)}, not {profile}"
    if money > purse.MAX_BALANCE:
        return "balance", f"a purse holds at most NT${purse.MAX_BALANCE}"
    return None


def default_account(name: str, profile: str, money: int, start: date, linked: bool = True) -> AccountSpec:
    """The account a card given as ``balance`` or ``purse`` becomes under ``--payment account``."""
    if profile != "student":
        return AccountSpec(balance=money, born=STAFF_BORN)
    born = start.replace(year=start.year - STUDENT_AGE)
    return AccountSpec(balance=money, born=born, guardian=f"guardian-of-{name}" if linked else None)


def account_orders(uid: str, profile: str, account: AccountSpec, today: date) -> list[dict[str, Any]]:
    """The issuer's orders that open ``account`` for card ``uid`` (``vending backend issuer open|...``)."""
    orders: list[dict[str, Any]] = [
        {"order": "open", "card": uid, "profile": profile, "born": account.born.isoformat(), "day": today.isoformat()}
    ]
    if account.balance:
        orders.append({"order": "topup", "card": uid, "amount": account.balance})
    if account.guardian is not None:
        orders.append({"order": "link", "card": uid, "guardian": account.guardian})
    if account.cap is not None or account.paused:
        orders.append({"order": "cap", "card": uid, "daily_cap": account.cap, "paused": account.paused})
    return orders


class CardSpec(Strict):
    """A card of the run: ``balance`` in the machine's wallet, ``purse`` on the card, or an issuer's ``account``.

    Each gives the card's starting money wherever the run's payment mode keeps it
    (``payment_modes``); a purse is at most NT$10,000, as on an EasyCard.
    """

    uid: str
    profile: Profile
    balance: int | None = Field(default=None, ge=0, le=1_000_000)
    purse: int | None = Field(default=None, ge=0, le=10_000)
    account: AccountSpec | None = None
    guardian: GuardianControls | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> CardSpec:
        if [self.balance, self.purse, self.account].count(None) != 2:
            raise ValueError("give the card's money as one of `balance` (machine wallet), `purse` (on the card) "
                             "or `account` (at the issuer)")  # fmt: skip
        return self

    @property
    def money(self) -> int:
        if self.account is not None:
            return self.account.balance
        return self.purse if self.purse is not None else self.balance or 0

    def purse_problem(self) -> tuple[str, str] | None:
        return purse_card_problem(self.uid, self.profile, self.money)

    def account_at_issuer(self, name: str, start: date) -> AccountSpec:
        linked = self.guardian.linked if self.guardian else True
        return self.account or default_account(name, self.profile, self.money, start, linked)

    @field_validator("uid", mode="before")
    @classmethod
    def _uid(cls, value: object) -> str:
        return parse_uid(value)


class UnknownCard(Strict):
    uid: str

    @field_validator("uid", mode="before")
    @classmethod
    def _uid(cls, value: object) -> str:
        return parse_uid(value)
