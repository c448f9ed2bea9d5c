"""Settlements sealed to the card issuer (X25519 sealed box): the vendor's broker carries them blind.

A sealed box hides the content but says nothing of who sealed it (anyone holds the public key), so
what goes inside is the machine's signed settlement; the issuer checks that signature after opening.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from nacl.public import PrivateKey, PublicKey, SealedBox

from firmware.reporting.signed import Verifier
from firmware.reporting.wire import parse_object


def seal(document: dict[str, Any], public_key: bytes) -> str:
    plain = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(SealedBox(PublicKey(public_key)).encrypt(plain)).decode("ascii")


def unseal(sealed: str, private_key: bytes) -> dict[str, Any]:
    plain = SealedBox(PrivateKey(private_key)).decrypt(base64.b64decode(sealed))
    result: dict[str, Any] = json.loads(plain)
    return result


def open_settlement(sealed: str, private_key: bytes, verify: Verifier, max_bytes: int = 1 << 20) -> dict[str, Any]:
    """The settlement document inside the seal, if the machine's signature on it checks out."""
    signed = verify(unseal(sealed, private_key))
    return parse_object(signed.payload, max_bytes)
