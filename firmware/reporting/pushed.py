"""A party's signed, sealed push to its machines: the issuer's lost-card list, the school's guardian controls.

Both travel the same way. The authority signs a document ``{kind, version, issued, expires, ...}``
(JWS); the signed text is put in an XSalsa20-Poly1305 secret box under a key derived from the key the
authority shares with its machines only (``label`` keeps one key's two uses apart), and published as
``{"sealed": base64}``. The vendor that runs the broker sees a blob of a few fixed sizes: ``pad_to``
rounds the boxed text up (length-prefixed, random filler), so neither the contents nor how many
cards they name show.

``open_push`` refuses, with the reason, anything not sealed with the key, not signed by the
authority, malformed, or whose ``kind`` is not asked for; ``check_order`` refuses a version older
than the machine holds (a replay) or past its expiry, and says ``AlreadyHeld`` for the version held.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from firmware.identity.signing import Identity
from firmware.reporting.signed import Verifier, canonical, open_signed, sign_text
from firmware.reporting.wire import WireError, parse_object

HEAD = ("kind", "version", "issued", "expires")
LENGTH = struct.Struct(">I")


class AlreadyHeld(WireError):
    """The version the machine holds already (redelivered on a reconnect, the whole list after its delta)."""


@dataclass(frozen=True)
class PushHead:
    kind: str
    version: int
    issued: datetime
    expires: datetime


def _box(key: bytes, label: str) -> SecretBox:
    return SecretBox(hashlib.sha256(f"{label}-seal|".encode() + key).digest())


def seal_push(identity: Identity, key: bytes, label: str, document: Mapping[str, Any], pad_to: int = 1) -> str:
    """The wire form of ``document`` signed by ``identity``, sealed under ``key`` for ``label``."""
    signed = sign_text(identity, canonical(document)).encode()
    framed = LENGTH.pack(len(signed)) + signed
    framed += secrets.token_bytes(-len(framed) % pad_to)
    return json.dumps({"sealed": base64.b64encode(bytes(_box(key, label).encrypt(framed))).decode("ascii")})


def open_push(raw: bytes, key: bytes, label: str, verify: Verifier, max_bytes: int) -> dict[str, Any]:
    """The signed document inside a push; ``WireError`` naming the first check it fails."""
    outer = parse_object(raw[: max_bytes + 1], max_bytes)
    if set(outer) != {"sealed"} or not isinstance(outer["sealed"], str):
        raise WireError(f'a {label} push is {{"sealed"}} and nothing else')
    try:
        framed = _box(key, label).decrypt(base64.b64decode(outer["sealed"], validate=True))
    except (CryptoError, ValueError):
        raise WireError(f"not sealed with this {label} key") from None
    if len(framed) < LENGTH.size or (length := LENGTH.unpack_from(framed)[0]) > len(framed) - LENGTH.size:
        raise WireError(f"a {label} push whose length frame does not fit it")
    _, body = open_signed(framed[LENGTH.size : LENGTH.size + length], max_bytes, verify)
    return body


def read_head(body: Mapping[str, Any], kinds: Mapping[str, tuple[str, ...]]) -> PushHead:
    """The checked head of a document whose members must be exactly ``HEAD`` + ``kinds[kind]``."""
    kind = body.get("kind")
    members = kinds.get(str(kind))
    if members is None:
        raise WireError(f"kind: expected {' or '.join(kinds)}")
    if set(body) != {*HEAD, *members}:
        raise WireError(f"a {kind} push is {{{', '.join((*HEAD, *members))}}}")
    version = body["version"]
    if type(version) is not int or not 0 < version < 2**53:
        raise WireError("version: expected a whole number above 0")
    try:
        issued = datetime.fromisoformat(str(body["issued"]))
        expires = datetime.fromisoformat(str(body["expires"]))
    except ValueError:
        raise WireError("issued, expires: expected ISO 8601 times") from None
    if issued.tzinfo is None or expires.tzinfo is None:
        raise WireError("issued, expires: need a UTC offset")
    return PushHead(str(kind), version, issued, expires)


def check_order(head: PushHead, held: int, now: datetime) -> None:
    """Refuse a push the machine must not apply: held already, older than held (a replay), or expired."""
    if head.version == held:
        raise AlreadyHeld(f"version {held} is the one held")
    if head.version < held:
        raise WireError(f"version {head.version} is not newer than the one held ({held}): a replay")
    if head.expires <= now:
        raise WireError(f"expired at {head.expires.isoformat()}")


def push_head(kind: str, version: int, issued: datetime, expires: datetime) -> dict[str, object]:
    return {"kind": kind, "version": version, "issued": issued.isoformat(), "expires": expires.isoformat()}
