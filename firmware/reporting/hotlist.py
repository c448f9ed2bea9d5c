"""The issuer's lost-card hotlist on the wire: signed by the issuer, sealed with the key it shares with its machines.

A card is named by ``HMAC-SHA256(hotlist key, "hotlist|" uid)[:16]``: only the issuer and its
machines can compute it. A list is a document ``{kind, version, issued, expires, ...}``: ``full``
with every ``entries`` (retained on ``issuer/v1/hotlist``, so a machine that connects gets it), or
``delta`` from ``base`` with ``add`` and ``remove`` (on ``issuer/v1/hotlist/delta``). The issuer
signs the document (JWS), and the signed envelope is sealed (XSalsa20-Poly1305) with a key derived
from the hotlist key; the entries are padded with random names to a fixed bucket (``BUCKET`` for a
full list, ``DELTA_BUCKET`` for a delta), so the vendor that runs the broker sees one sealed blob of
a few fixed sizes: no card, and not how many cards were lost. A random name never matches a card.

``read`` refuses, with the reason, anything that is not sealed with the key, not signed by the
issuer, malformed, expired, older than what the machine holds (a replay) or a delta from another
version (out of order); the version it holds already is ``AlreadyHeld`` (the whole list after its
own delta, or redelivered on a reconnect), which is no incident.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from firmware.identity.signing import Identity
from firmware.reporting.signed import Verifier, canonical, open_signed, sign_text
from firmware.reporting.wire import WireError, parse_object

FULL_TOPIC = "issuer/v1/hotlist"
DELTA_TOPIC = "issuer/v1/hotlist/delta"
BUCKET = 256  # a full list's entries, padded to a multiple of this
DELTA_BUCKET = 16  # a delta's additions and removals, each padded to a multiple of this
MAX_ENTRIES = 65_536
MAX_HOTLIST_BYTES = 8 * 1024 * 1024  # 64 Ki names of 32 hex digits, signed, sealed, base64: well under
ENTRY = re.compile(r"^[0-9a-f]{32}$")


class AlreadyHeld(WireError):
    """The version the machine holds already: the whole list after its own delta, or redelivered on a reconnect."""


@dataclass(frozen=True)
class HotlistDocument:
    """A checked list: ``entries`` (full) or ``add``/``remove`` (delta), padding included (it matches no card)."""

    kind: str
    version: int
    base: int
    issued: datetime
    expires: datetime
    entries: frozenset[str] = frozenset()
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


def _box(key: bytes) -> SecretBox:
    return SecretBox(hashlib.sha256(b"hotlist-seal|" + key).digest())


def _padded(names: set[str], bucket: int) -> list[str]:
    filler = -len(names) % bucket or (bucket if not names else 0)
    return sorted(names | {secrets.token_hex(16) for _ in range(filler)})


def compose_full(identity: Identity, key: bytes, version: int, issued: datetime, expires: datetime,
                 names: set[str]) -> str:  # fmt: skip
    document = _head("full", version, version, issued, expires) | {"entries": _padded(names, BUCKET)}
    return _seal(identity, key, document)


def compose_delta(identity: Identity, key: bytes, version: int, issued: datetime, expires: datetime,
                  add: set[str], remove: set[str]) -> str:  # fmt: skip
    document = _head("delta", version, version - 1, issued, expires)
    document |= {"add": _padded(add, DELTA_BUCKET), "remove": _padded(remove, DELTA_BUCKET)}
    return _seal(identity, key, document)


def _head(kind: str, version: int, base: int, issued: datetime, expires: datetime) -> dict[str, object]:
    return {
        "kind": kind,
        "version": version,
        "base": base,
        "issued": issued.isoformat(),
        "expires": expires.isoformat(),
    }


def _seal(identity: Identity, key: bytes, document: dict[str, object]) -> str:
    signed = sign_text(identity, canonical(document)).encode()
    return json.dumps({"sealed": base64.b64encode(bytes(_box(key).encrypt(signed))).decode("ascii")})


def read(raw: bytes, key: bytes, verify: Verifier, held: int, now: datetime) -> HotlistDocument:
    """The list in ``raw`` if it is the issuer's, current and newer than version ``held``; ``WireError`` if not."""
    outer = parse_object(raw[: MAX_HOTLIST_BYTES + 1], MAX_HOTLIST_BYTES)
    if set(outer) != {"sealed"} or not isinstance(outer["sealed"], str):
        raise WireError('a hotlist is {"sealed"} and nothing else')
    try:
        signed = _box(key).decrypt(base64.b64decode(outer["sealed"], validate=True))
    except (CryptoError, ValueError):
        raise WireError("not sealed with this issuer's hotlist key") from None
    _, body = open_signed(signed, MAX_HOTLIST_BYTES, verify)
    document = _document(body)
    if document.version == held:
        raise AlreadyHeld(f"version {held} is the list held")
    if document.version < held:
        raise WireError(f"version {document.version} is not newer than the list held ({held}): a replay")
    if document.kind == "delta" and document.base != held:
        raise WireError(f"a delta from version {document.base}; the list held is version {held}: out of order")
    if document.expires <= now:
        raise WireError(f"expired at {document.expires.isoformat()}")
    return document


def _document(body: dict[str, object]) -> HotlistDocument:
    kind = body.get("kind")
    lists = {"full": ("entries",), "delta": ("add", "remove")}.get(str(kind))
    if lists is None:
        raise WireError("kind: expected full or delta")
    if set(body) != {"kind", "version", "base", "issued", "expires", *lists}:
        raise WireError(f"a {kind} hotlist is {{kind, version, base, issued, expires, {', '.join(lists)}}}")
    version, base = body["version"], body["base"]
    if type(version) is not int or type(base) is not int or not 0 < version < 2**53 or not 0 <= base <= version:
        raise WireError("version, base: expected whole numbers, base <= version")
    try:
        issued = datetime.fromisoformat(str(body["issued"]))
        expires = datetime.fromisoformat(str(body["expires"]))
    except ValueError:
        raise WireError("issued, expires: expected ISO 8601 times") from None
    if issued.tzinfo is None or expires.tzinfo is None:
        raise WireError("issued, expires: need a UTC offset")
    names: dict[str, frozenset[str]] = {}
    for name in lists:
        value = body[name]
        if not isinstance(value, list) or len(value) > MAX_ENTRIES:
            raise WireError(f"{name}: expected a list of at most {MAX_ENTRIES} names")
        if not all(isinstance(entry, str) and ENTRY.match(entry) for entry in value):
            raise WireError(f"{name}: every name is 32 lower-case hex digits")
        names[name] = frozenset(value)
    return HotlistDocument(str(kind), version, base, issued, expires, **names)
