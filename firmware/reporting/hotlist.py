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

import secrets
from dataclasses import dataclass
from datetime import datetime

from firmware.domain import CARD_NAME
from firmware.identity.signing import Identity
from firmware.reporting.pushed import AlreadyHeld, PushHead, check_order, open_push, push_head, read_head, seal_push
from firmware.reporting.signed import Verifier
from firmware.reporting.wire import WireError

FULL_TOPIC = "issuer/v1/hotlist"
DELTA_TOPIC = "issuer/v1/hotlist/delta"
BUCKET = 256  # a full list's entries, padded to a multiple of this
DELTA_BUCKET = 16  # a delta's additions and removals, each padded to a multiple of this
MAX_ENTRIES = 65_536
MAX_HOTLIST_BYTES = 8 * 1024 * 1024  # 64 Ki names of 32 hex digits, signed, sealed, base64: well under
LABEL = "hotlist"
__all__ = ["AlreadyHeld", "HotlistDocument", "compose_delta", "compose_full", "read"]


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


def _padded(names: set[str], bucket: int) -> list[str]:
    filler = -len(names) % bucket or (bucket if not names else 0)
    return sorted(names | {secrets.token_hex(16) for _ in range(filler)})


def compose_full(identity: Identity, key: bytes, version: int, issued: datetime, expires: datetime,
                 names: set[str]) -> str:  # fmt: skip
    document = push_head("full", version, issued, expires) | {"base": version, "entries": _padded(names, BUCKET)}
    return seal_push(identity, key, LABEL, document)


def compose_delta(identity: Identity, key: bytes, version: int, issued: datetime, expires: datetime,
                  add: set[str], remove: set[str]) -> str:  # fmt: skip
    document = push_head("delta", version, issued, expires) | {"base": version - 1}
    document |= {"add": _padded(add, DELTA_BUCKET), "remove": _padded(remove, DELTA_BUCKET)}
    return seal_push(identity, key, LABEL, document)


def read(raw: bytes, key: bytes, verify: Verifier, held: int, now: datetime) -> HotlistDocument:
    """The list in ``raw`` if it is the issuer's, current and newer than version ``held``; ``WireError`` if not."""
    head, document = _document(open_push(raw, key, LABEL, verify, MAX_HOTLIST_BYTES))
    check_order(head, held, now)
    if document.kind == "delta" and document.base != held:
        raise WireError(f"a delta from version {document.base}; the list held is version {held}: out of order")
    return document


def _document(body: dict[str, object]) -> tuple[PushHead, HotlistDocument]:
    head = read_head(body, {"full": ("base", "entries"), "delta": ("base", "add", "remove")})
    base = body["base"]
    if type(base) is not int or not 0 <= base <= head.version:
        raise WireError("base: expected a whole number, base <= version")
    lists = ("entries",) if head.kind == "full" else ("add", "remove")
    names: dict[str, frozenset[str]] = {}
    for name in lists:
        value = body[name]
        if not isinstance(value, list) or len(value) > MAX_ENTRIES:
            raise WireError(f"{name}: expected a list of at most {MAX_ENTRIES} names")
        if not all(isinstance(entry, str) and CARD_NAME.fullmatch(entry) for entry in value):
            raise WireError(f"{name}: every name is 32 lower-case hex digits")
        names[name] = frozenset(value)
    return head, HotlistDocument(head.kind, head.version, base, head.issued, head.expires, **names)
