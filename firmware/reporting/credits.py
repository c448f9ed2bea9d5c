"""The issuer's pending credits on the wire: what operators refunded to purse cards, for any machine to give.

With the purse on the card, a refund the vendor grants (``vending cmd send refund``) is the issuer's to
pass on: the selling machine reports it sealed to the issuer (``credit``), the issuer numbers it per card
(``seq`` 1, 2, ...) and lists every credit not yet given, signed and sealed with the key it shares with
its machines (as the lost-card list), retained on ``issuer/v1/credits``. The first machine the card
meets gives it (firmware/cards/purse_io.py ``apply_credit``: the card remembers the highest seq it was
given, so no second machine gives it again) and reports it given (``credit-given``); the issuer's next
list leaves it out. A card is named ``HMAC-SHA256(hotlist key, "hotlist|" uid)[:16]``, the lost-card
list's name; the sealed text is padded to ``PAD`` bytes. A credit that gives back a purchase names the
purchase's card day (``[seq, amount, "YYYY-MM-DD"]``): given on that day, it gives back that day's
allowance too, as the selling machine's own refund does (docs/payments.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from firmware.domain import CARD_NAME, Credit
from firmware.identity.signing import Identity
from firmware.reporting.pushed import check_order, open_push, push_head, read_head, seal_push
from firmware.reporting.signed import Verifier
from firmware.reporting.wire import WireError

TOPIC = "issuer/v1/credits"
LABEL = "credits"
PAD = 16 * 1024
MAX_CREDITS = 50_000
MAX_CREDITS_BYTES = 8 * 1024 * 1024
DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True)
class CreditsDocument:
    version: int
    issued: datetime
    expires: datetime
    cards: Mapping[str, tuple[Credit, ...]]  # card name -> its credits, seq ascending


def compose(identity: Identity, key: bytes, version: int, issued: datetime, expires: datetime,
            cards: Mapping[str, list[Credit]]) -> str:  # fmt: skip
    document = push_head("credits", version, issued, expires)
    document["cards"] = {name: [_listed(credit) for credit in sorted(credits)] for name, credits in cards.items()}
    return seal_push(identity, key, LABEL, document, pad_to=PAD)


def _listed(credit: Credit) -> list[int | str]:
    return [credit.seq, credit.amount] if credit.bought is None else [credit.seq, credit.amount, credit.bought]


def read(raw: bytes, key: bytes, verify: Verifier, held: int, now: datetime) -> CreditsDocument:
    """The list in ``raw`` if it is the issuer's, unexpired and newer than version ``held``; ``WireError`` if not."""
    body = open_push(raw, key, LABEL, verify, MAX_CREDITS_BYTES)
    head = read_head(body, {"credits": ("cards",)})
    check_order(head, held, now)
    cards = body["cards"]
    if not isinstance(cards, dict):
        raise WireError("cards: expected an object")
    found: dict[str, tuple[Credit, ...]] = {}
    total = 0
    for name, credits in cards.items():
        if not CARD_NAME.fullmatch(name) or not isinstance(credits, list):
            raise WireError("cards: every card is named by 32 lower-case hex digits, with a list of [seq, amount]")
        listed = sorted((_credit(name, credit) for credit in credits), key=lambda credit: credit.seq)
        if len({credit.seq for credit in listed}) != len(listed):
            raise WireError(f"cards.{name[:8]}…: a credit's seq is listed twice")
        total += len(listed)
        found[name] = tuple(listed)
    if total > MAX_CREDITS:
        raise WireError(f"cards: at most {MAX_CREDITS} credits")
    return CreditsDocument(head.version, head.issued, head.expires, found)


def _credit(name: str, credit: object) -> Credit:
    """``[seq, amount]`` or ``[seq, amount, bought]``, each in range; ``WireError`` naming the card otherwise."""
    if (not isinstance(credit, list) or len(credit) not in (2, 3) or not all(type(v) is int for v in credit[:2])
            or not 0 < credit[0] < 0x8000 or not 0 < credit[1] <= 10_000
            or (len(credit) == 3 and not (isinstance(credit[2], str) and DAY.fullmatch(credit[2])))):  # fmt: skip
        raise WireError(f"cards.{name[:8]}…: each credit is [seq 1..32767, amount 1..10000] or with its day bought")
    return Credit(*credit)
