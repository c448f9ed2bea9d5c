"""Card uid -> a pseudonym for one visit, so the vendor can count sales but never link two of them.

A pseudonym that lasts a term lets a vendor and an issuer who pool their records intersect each
day's buyers until every card is pinned (99 % of 300 cards after 20 school days, measured by
``vending privacy attack --design term``); one that lasts a day still lets them match a card's day
total. So the vendor's pseudonym names one visit: the card and the minute of the tap (UTC), under
the school's term key. The school, which holds the key, can re-derive every pseudonym of a card for
an access or erasure request; nobody else can link two of them (docs/privacy.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime


def normalise_uid(uid: str) -> str:
    """Upper-case hex without separators: the one spelling every component agrees on."""
    return "".join(ch for ch in uid if ch not in ": -").upper()


def visit_minute(at: datetime) -> str:
    """The minute a visit is named by: UTC, so it does not depend on the machine's zone setting."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


class Pseudonymizer:
    """``base32(HMAC-SHA256(term_key, "visit|" minute "|" uid)[:16])``: 128 bits, no padding, lower-case."""

    def __init__(self, term: str, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a term key must be at least 32 bytes")
        self.term = term
        self._key = key

    def __call__(self, uid: str, at: datetime) -> str:
        message = f"visit|{visit_minute(at)}|{normalise_uid(uid)}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:16]
        return base64.b32encode(digest).decode("ascii").rstrip("=").lower()

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(term={self.term!r})"
