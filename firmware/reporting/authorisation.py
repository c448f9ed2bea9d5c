"""An account's authorisation on the wire: the machine's signed request, the issuer's signed, sealed answer.

Request (``issuer/v1/<machine>/auth``, signed by the machine): ``{id, machine, kind, sealed, reply_to}``.
``sealed`` is a sealed box to the issuer holding the card number, the day and, to authorise, the
transaction and the amount; ``reply_to`` is an X25519 key made for this request only. Answer
(``issuer/v1/<machine>/auth-answer``, signed by the issuer): ``{id, machine, sealed}``, sealed to
``reply_to``. So the broker, and the vendor that may run it, see that a card was asked about and
nothing else: not which card, not its balance, not why it was declined; and a reply key used once
links no two visits. docs/asyncapi.yaml has both shapes; docs/payments.md the flow.

An answer is worth only within the machine's timeout (QoS 0 both ways): the money's exactly-once
comes from each debit's outcome, reported through the outbox and keyed on the transaction.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey

from firmware.domain import IssuerAnswer
from firmware.identity.signing import Identity
from firmware.reporting.sealed import seal, unseal
from firmware.reporting.signed import Verifier, canonical, open_signed, sign_text
from firmware.reporting.wire import WireError

KINDS = ("inquiry", "authorise")
MAX_AUTH_BYTES = 4096  # a request or an answer is well under 1 KiB
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
REPLY_KEY = re.compile(r"^[A-Za-z0-9+/]{43}=$")
ANSWER_FIELDS = {"approved", "reason", "details", "profile", "balance", "linked", "daily_limit", "spent_today"}


@dataclass(frozen=True)
class AuthRequest:
    """A request the issuer checked: the machine signed it; ``inside`` is what it sealed to the issuer."""

    id: str
    machine: str
    kind: str
    inside: dict[str, Any]
    reply_to: bytes


def compose_request(
    identity: Identity, machine: str, kind: str, inside: dict[str, Any], issuer_key: bytes
) -> tuple[str, str, PrivateKey]:
    """``(request id, wire form, the one-time key the answer is sealed to)``."""
    reply = PrivateKey.generate()
    request_id = secrets.token_hex(16)
    document = {
        "id": request_id,
        "machine": machine,
        "kind": kind,
        "sealed": seal(inside, issuer_key),
        "reply_to": base64.b64encode(bytes(reply.public_key)).decode("ascii"),
    }
    return request_id, sign_text(identity, canonical(document)), reply


def read_request(raw: bytes, machine: str, verify: Verifier, issuer_private: bytes) -> AuthRequest:
    """The request if ``machine``'s enrolled key signed it and it is well formed; ``WireError`` naming why."""
    _, body = open_signed(raw[: MAX_AUTH_BYTES + 1], MAX_AUTH_BYTES, verify)
    if set(body) != {"id", "machine", "kind", "sealed", "reply_to"}:
        raise WireError("an authorisation request is {id, machine, kind, sealed, reply_to}")
    if not isinstance(body["id"], str) or not REQUEST_ID.fullmatch(body["id"]):
        raise WireError("id: expected 32 lower-case hex digits")
    if body["machine"] != machine:
        raise WireError("machine: the request names another machine than its topic")
    if body["kind"] not in KINDS:
        raise WireError(f"kind: expected one of {KINDS}")
    if not isinstance(body["reply_to"], str) or not REPLY_KEY.fullmatch(body["reply_to"]):
        raise WireError("reply_to: expected an X25519 public key in base64")
    try:
        inside = unseal(str(body["sealed"]), issuer_private)
    except (CryptoError, binascii.Error, ValueError, TypeError):
        raise WireError("sealed: not sealed to this issuer") from None
    if not isinstance(inside, dict):
        raise WireError("sealed: expected an object inside")
    return AuthRequest(body["id"], machine, body["kind"], inside, base64.b64decode(body["reply_to"]))


def compose_answer(identity: Identity, request: AuthRequest, answer: IssuerAnswer) -> str:
    inside = {
        "approved": answer.approved,
        "reason": answer.reason,
        "details": dict(answer.details),
        "profile": answer.profile,
        "balance": answer.balance,
        "linked": answer.linked,
        "daily_limit": answer.daily_limit,
        "spent_today": answer.spent_today,
    }
    document = {"id": request.id, "machine": request.machine, "sealed": seal(inside, request.reply_to)}
    return sign_text(identity, canonical(document))


def answer_id(raw: bytes, machine: str, verify: Verifier) -> tuple[str, str]:
    """``(request id, sealed answer)`` if the issuer signed it for ``machine``; ``WireError`` otherwise."""
    _, body = open_signed(raw[: MAX_AUTH_BYTES + 1], MAX_AUTH_BYTES, verify)
    if set(body) != {"id", "machine", "sealed"} or body["machine"] != machine or not isinstance(body["id"], str):
        raise WireError("an authorisation answer is {id, machine, sealed} for this machine")
    return body["id"], str(body["sealed"])


def open_answer(sealed: str, reply: PrivateKey) -> IssuerAnswer:
    """The answer inside the seal, each field checked; ``WireError`` for anything else."""
    try:
        inside = unseal(sealed, bytes(reply))
    except (CryptoError, binascii.Error, ValueError, TypeError):
        raise WireError("the answer is not sealed to this request's key") from None
    if not isinstance(inside, dict) or set(inside) != ANSWER_FIELDS:
        raise WireError(f"an answer holds {sorted(ANSWER_FIELDS)}")
    details = inside["details"]
    if not isinstance(details, dict) or not all(type(v) is int for v in details.values()):
        raise WireError("details: expected whole numbers")
    checks = {
        "approved": type(inside["approved"]) is bool,
        "reason": inside["reason"] is None or isinstance(inside["reason"], str),
        "profile": inside["profile"] is None or isinstance(inside["profile"], str),
        "balance": inside["balance"] is None or type(inside["balance"]) is int,
        "linked": type(inside["linked"]) is bool,
        "daily_limit": inside["daily_limit"] is None or type(inside["daily_limit"]) is int,
        "spent_today": type(inside["spent_today"]) is int,
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise WireError(f"{wrong[0]}: not of the answer's type")
    return IssuerAnswer(**inside)
