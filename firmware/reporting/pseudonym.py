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

    def __call__(self, uid: str) -> str:
        digest = hmac.new(self._key, bytes.fromhex(normalise_uid(uid)), hashlib.sha256).digest()[:16]
        return base64.b32encode(digest).decode("ascii").rstrip("=").lower()

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(term={self.term!r})"
