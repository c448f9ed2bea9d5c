"""Signed messages on the broker: every report, ack and command is a JWS (see identity/signing.py).

Reading one is always the same three checks, in this order, each refusing with a reason: the outer
message within size and nesting limits, the signature by a key the reader trusts for this topic, and
the signed payload itself within the same limits. Nothing acts on a message before all three pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from firmware.identity.signing import Identity, SignatureError, Signed
from firmware.reporting.wire import WireError, parse_as, sequence

Verifier = Callable[[Mapping[str, Any]], Signed]
MAX_ACK_BYTES = 1024  # a signed {"machine", "seq"}: about 400 bytes
ACK_PARTY = {"vendor": "vendor", "issuer": "issuer", "school": "school"}  # stream -> who may acknowledge it


def canonical(document: Mapping[str, Any]) -> str:
    """The one JSON text of a document that gets signed (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_text(identity: Identity, text: str) -> str:
    """The wire form of ``text`` signed by ``identity``."""
    return json.dumps(identity.sign(text), separators=(",", ":"), ensure_ascii=False)


def open_signed(raw: bytes, max_bytes: int, verify: Verifier, kind: str = "") -> tuple[Signed, dict[str, Any]]:
    """Verify a signed message and return who signed it and the payload object; ``WireError`` if not.

    With the payload's ``kind`` (a report kind of the contract) it comes back as a ``CheckedPayload``
    when it holds to that kind's schema (codec.py).
    """
    envelope = parse_as("signed", raw, max_bytes)
    try:
        signed = verify(envelope)
    except SignatureError as exc:
        raise WireError(str(exc)) from None
    return signed, parse_as(kind, signed.payload, max_bytes)


def compose_ack(identity: Identity, machine: str, seq: int) -> str:
    """What a receiver publishes once ``seq`` and everything before it on its stream is stored."""
    return sign_text(identity, canonical({"machine": machine, "seq": seq}))


def read_ack(raw: bytes, machine: str, verify: Verifier) -> int:
    """The seq a genuine ack for ``machine`` acknowledges; ``WireError`` for anything else."""
    _, body = open_signed(raw[: MAX_ACK_BYTES + 1], MAX_ACK_BYTES, verify)
    if set(body) != {"machine", "seq"}:
        raise WireError(f'an ack is {{"machine", "seq"}} and nothing else, got keys {sorted(body)[:5]}')
    if body["machine"] != machine:
        raise WireError("the ack is for another machine")
    return sequence(body["seq"])
