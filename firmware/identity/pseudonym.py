"""Card uid -> a pseudonym for one visit, so the vendor can count sales but never link two of them.

A pseudonym that lasts a term lets a vendor and an issuer who pool their records intersect each
day's buyers until every card is pinned (99 % of 300 cards after 20 school days, measured by
``vending privacy attack --design term``); one that lasts a day still lets them match a card's day
total. So the vendor's pseudonym names one visit: the card and the visit's transaction id (random,
and carrying the machine's id), under the school's term key. Two visits never share one, not even
two taps in the same minute. The school, which holds the key, tests each record it fetched against
a student's card for an access or erasure request (simulator/school/subject.py); nobody else can
link two of them (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import hmac


def normalise_uid(uid: str) -> str:
    """Upper-case hex without separators: the one spelling every component agrees on."""
    if uid.isalnum():  # no separator to drop (the spelling a reader gives): twice on every tap
        return uid.upper()
    return "".join(ch for ch in uid if ch not in ": -").upper()


class Pseudonymizer:
    """``base32(HMAC-SHA256(term_key, "visit|" txn "|" uid)[:16])``: 128 bits, no padding, lower-case."""

    def __init__(self, term: str, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a term key must be at least 32 bytes")
        self.term = term
        self._key = key

    def __call__(self, uid: str, txn_id: str) -> str:
        message = f"visit|{txn_id}|{normalise_uid(uid)}".encode()
        return base32_lower(hmac.digest(self._key, message, "sha256")[:16])

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(term={self.term!r})"


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS = [_BASE32[high] + _BASE32[low] for high in range(32) for low in range(32)]  # 10 bits -> 2 letters


def base32_lower(digest: bytes) -> str:
    """RFC 4648 base32 of 16 bytes, lower-case and unpadded: 26 letters.

    ``base64.b32encode`` is a Python loop in 3.11 and every vend names its visit: this is one integer
    and thirteen look-ups (test_pseudonyms holds the two to the same output).
    """
    if len(digest) != 16:
        raise ValueError("a visit's name is made from 16 bytes")
    bits = int.from_bytes(digest, "big") << 2  # 128 bits padded to 130: 13 pairs of 5-bit letters
    return "".join([_PAIRS[(bits >> shift) & 0x3FF] for shift in range(120, -1, -10)])


def hotlist_name(key: bytes, uid: str) -> str:
    """A card's name on the issuer's lost-card list: ``HMAC-SHA256(key, "hotlist|" uid)[:16]``, hex.

    Only the issuer and its machines hold the key; the name says nothing of the card to anyone else.
    """
    return hmac.new(key, b"hotlist|" + normalise_uid(uid).encode(), hashlib.sha256).hexdigest()[:32]


def controls_name(key: bytes, uid: str) -> str:
    """A card's name in the school's guardian controls: ``HMAC-SHA256(key, "controls|" uid)[:16]``, hex.

    Only the school and its machines hold the key; the vendor that carries the push cannot name a card.
    """
    return hmac.new(key, b"controls|" + normalise_uid(uid).encode(), hashlib.sha256).hexdigest()[:32]


def technician_name(key: bytes, uid: str) -> str:
    """A route technician's card as a machine config lists it: ``HMAC-SHA256(key, "technician|" uid)[:16]``, hex.

    The vendor holds the key and gives it to its machines; a config (or a stolen one) names no card.
    """
    return hmac.new(key, b"technician|" + normalise_uid(uid).encode(), hashlib.sha256).hexdigest()[:32]
