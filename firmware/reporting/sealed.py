"""Settlements sealed to the card issuer (X25519 sealed box): the vendor's broker carries them blind."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, PublicKey, SealedBox


def generate_keypair() -> tuple[bytes, bytes]:
    """(private, public) raw 32-byte keys for the issuer."""
    key = PrivateKey.generate()
    return bytes(key), bytes(key.public_key)


def seal(document: dict[str, Any], public_key: bytes) -> str:
    plain = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(SealedBox(PublicKey(public_key)).encrypt(plain)).decode("ascii")


def unseal(sealed: str, private_key: bytes) -> dict[str, Any]:
    plain = SealedBox(PrivateKey(private_key)).decrypt(base64.b64decode(sealed))
    result: dict[str, Any] = json.loads(plain)
    return result


def read_key(path: Path) -> bytes:
    raw = bytes.fromhex(path.read_text().strip())
    if len(raw) != 32:
        raise ValueError(f"{path}: expected a 32-byte X25519 key in hex")
    return raw
