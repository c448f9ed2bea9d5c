"""Card uid -> per-term pseudonym, so the vendor can count but never identify or link across terms."""

from __future__ import annotations

import base64
import hashlib
import hmac


def normalise_uid(uid: str) -> str:
    """Upper-case hex without separators: the one spelling every component agrees on."""
    return "".join(ch for ch in uid if ch not in ": -").upper()


class Pseudonymizer:
    """``base32(HMAC-SHA256(term_key, uid)[:16])``: 128 bits, no padding, lower-case."""

    def __init__(self, term: str, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a term key must be at least 32 bytes")
        self.term = term
        self._key = key
        self._known: dict[str, str] = {}  # a school's cards: bounded by how many exist

    def __call__(self, uid: str) -> str:
        pseudonym = self._known.get(uid)
        if pseudonym is None:
            digest = hmac.new(self._key, bytes.fromhex(normalise_uid(uid)), hashlib.sha256).digest()[:16]
            pseudonym = base64.b32encode(digest).decode("ascii").rstrip("=").lower()
            if len(self._known) < 100_000:
                self._known[uid] = pseudonym
        return pseudonym

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(term={self.term!r})"
