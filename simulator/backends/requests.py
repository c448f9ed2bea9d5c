"""Requests about one data subject: the school asks the vendor or the issuer, signed; they answer, signed.

Only the school knows who a student is, so only the school can turn an access or erasure request
into something another party can act on, and each party is asked in its own terms:

- the **vendor** gets the pseudonyms the school derives from the student's card for one machine-day
  (``access``: the records carrying them; ``erase``: delete them and say what went). It learns that
  the matching records belong to one unnamed person -- nothing it could tie to a card or a name;
- the **issuer** gets the card uid sealed to its own key (it knows the card already; the broker and
  everybody else see ciphertext) and answers the machine-days that card settled on.

Every message is a JWS by the sender's key and is checked for size and shape before anything acts on
it; a request the receiver cannot read is an incident, never an answer.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from firmware.domain import MACHINE_ID
from firmware.reporting.signed import Verifier, canonical, open_signed, sign_text
from firmware.reporting.wire import WireError

PARTIES = ("vendor", "issuer")
KINDS = {"vendor": ("access", "erase"), "issuer": ("access",)}
MAX_REQUEST_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 256 * 1024
MAX_PSEUDONYMS = 720  # half a day of minutes: one request stays well inside MAX_REQUEST_BYTES
PSEUDONYM = re.compile(r"^[a-z2-7]{26}$")
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class RequestRefused(WireError):
    """The party read the request and said why it could not act on it."""


def request_topic(party: str) -> str:
    return f"school/v1/{party}/request"


def answer_topic(party: str) -> str:
    return f"school/v1/{party}/answer"


@dataclass(frozen=True)
class PartyRequest:
    """One checked request. ``pseudonyms`` for the vendor; ``sealed`` (the card, for the issuer) otherwise."""

    id: str
    party: str
    kind: str
    machine: str | None = None
    day: str | None = None
    pseudonyms: tuple[str, ...] = ()
    sealed: str | None = None

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "party": self.party, "kind": self.kind}
        if self.party == "vendor":
            body |= {"machine": self.machine, "day": self.day, "pseudonyms": list(self.pseudonyms)}
        else:
            body["sealed"] = self.sealed
        return body


def new_request_id() -> str:
    return secrets.token_hex(16)


def compose(identity: Any, document: dict[str, Any]) -> str:
    """The wire form of a request or an answer, signed by ``identity``."""
    return sign_text(identity, canonical(document))


def read_request(raw: bytes, party: str, verify: Verifier) -> PartyRequest:
    """The request in ``raw`` if the school signed it and it is well formed; ``WireError`` naming the field."""
    _, body = open_signed(raw[: MAX_REQUEST_BYTES + 1], MAX_REQUEST_BYTES, verify)
    request_id = body.get("id")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        raise WireError("id: expected 32 lower-case hex digits")
    if body.get("party") != party:
        raise WireError(f"party: this request is not for the {party}")
    kind = body.get("kind")
    if kind not in KINDS[party]:
        raise WireError(f"kind: expected one of {KINDS[party]}, got {str(kind)[:20]!r}")
    if party == "issuer":
        if set(body) != {"id", "party", "kind", "sealed"} or not isinstance(body["sealed"], str):
            raise WireError('an issuer request is {"id", "party", "kind", "sealed"}')
        return PartyRequest(request_id, party, kind, sealed=body["sealed"])
    if set(body) != {"id", "party", "kind", "machine", "day", "pseudonyms"}:
        raise WireError('a vendor request is {"id", "party", "kind", "machine", "day", "pseudonyms"}')
    machine, day, pseudonyms = body["machine"], body["day"], body["pseudonyms"]
    if not isinstance(machine, str) or not MACHINE_ID.match(machine):
        raise WireError("machine: not a machine id")
    if not isinstance(day, str) or not _is_day(day):
        raise WireError("day: expected YYYY-MM-DD")
    if not isinstance(pseudonyms, list) or not 0 < len(pseudonyms) <= MAX_PSEUDONYMS:
        raise WireError(f"pseudonyms: expected a list of 1 to {MAX_PSEUDONYMS}")
    if not all(isinstance(p, str) and PSEUDONYM.match(p) for p in pseudonyms):
        raise WireError("pseudonyms: every item must be a pseudonym (26 base32 characters)")
    return PartyRequest(request_id, party, kind, machine, day, tuple(pseudonyms))


def read_answer(raw: bytes, request_id: str, verify: Verifier) -> dict[str, Any]:
    """The answer to ``request_id`` if its party signed it; ``WireError`` otherwise."""
    _, body = open_signed(raw[: MAX_ANSWER_BYTES + 1], MAX_ANSWER_BYTES, verify)
    if body.get("id") != request_id:
        raise WireError("an answer to another request")
    if "error" in body:
        raise RequestRefused(f"refused the request: {str(body['error'])[:200]}")
    return body


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
