"""Requests about a data subject: the school asks the vendor or the issuer, signed; they answer, signed.

Only the school knows who a student is, and no request says who: a request names a *slice* of a
party's data (its days at one machine, or every record of one machine-day), the same slice whoever
asked, and the school finds the student in what comes back (simulator/school/subject.py). So a
party that answers learns that somebody asked at that moment, never about whom:

- the **vendor** answers ``days`` (the days it holds of a machine) and ``access`` (every sale and
  refusal of one machine-day, in pages); ``erase`` names the exact records the school matched, by
  sequence number, and the vendor destroys them at once and for good (docs/privacy.md);
- the **issuer** answers ``days`` and ``access`` (every settlement line of one machine-day, card
  numbers included) sealed to a key the school made for this request only (``reply_to``), so the
  vendor that runs the broker reads nothing of it.

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
KINDS = {"vendor": ("days", "access", "erase"), "issuer": ("days", "access")}
MAX_REQUEST_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 256 * 1024
PAGE_BYTES = 192 * 1024  # the records of one answer page: room for the envelope within MAX_ANSWER_BYTES
MAX_ERASE = 2000  # sequence numbers in one erasure request: well inside MAX_REQUEST_BYTES
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
REPLY_KEY = re.compile(r"^[A-Za-z0-9+/]{43}=$")  # an X25519 public key, base64
# the fields each (party, kind) takes besides id, party and kind
SHAPES = {
    ("vendor", "days"): ("machine",),
    ("vendor", "access"): ("machine", "day", "after"),
    ("vendor", "erase"): ("machine", "seqs"),
    ("issuer", "days"): ("machine",),
    ("issuer", "access"): ("machine", "day", "reply_to"),
}


class RequestRefused(WireError):
    """The party read the request and said why it could not act on it."""


def request_topic(party: str) -> str:
    return f"school/v1/{party}/request"


def answer_topic(party: str) -> str:
    return f"school/v1/{party}/answer"


@dataclass(frozen=True)
class PartyRequest:
    """One checked request: ``machine`` always; ``day`` and ``after`` (a page) or ``seqs`` (an erasure) by kind."""

    id: str
    party: str
    kind: str
    machine: str
    day: str | None = None
    after: int = 0  # access to the vendor: the records after this sequence number (the next page)
    seqs: tuple[int, ...] = ()  # erase: the records the school matched
    reply_to: str | None = None  # access to the issuer: the school's one-time X25519 key, base64

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "party": self.party, "kind": self.kind}
        values = {"machine": self.machine, "day": self.day, "after": self.after, "seqs": list(self.seqs)}
        values["reply_to"] = self.reply_to
        return body | {name: values[name] for name in SHAPES[(self.party, self.kind)]}


def new_request_id() -> str:
    return secrets.token_hex(16)


def compose(identity: Any, document: dict[str, Any]) -> str:
    """The wire form of a request or an answer, signed by ``identity``."""
    return sign_text(identity, canonical(document))


def read_request(raw: bytes, party: str, verify: Verifier) -> PartyRequest:
    """The request in ``raw`` if the school signed it and it is well formed; ``WireError`` naming the field."""
    _, body = open_signed(raw[: MAX_REQUEST_BYTES + 1], MAX_REQUEST_BYTES, verify)
    request_id = body.get("id")
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise WireError("id: expected 32 lower-case hex digits")
    if body.get("party") != party:
        raise WireError(f"party: this request is not for the {party}")
    kind = body.get("kind")
    if kind not in KINDS[party]:
        raise WireError(f"kind: expected one of {KINDS[party]}, got {str(kind)[:20]!r}")
    shape = SHAPES[(party, kind)]
    if set(body) != {"id", "party", "kind", *shape}:
        raise WireError(f"a {party} {kind} request is {{id, party, kind, {', '.join(shape)}}}")
    machine = body["machine"]
    if not isinstance(machine, str) or not MACHINE_ID.fullmatch(machine):
        raise WireError("machine: not a machine id")
    day = body.get("day")
    if "day" in shape and (not isinstance(day, str) or not _is_day(day)):
        raise WireError("day: expected YYYY-MM-DD")
    after = body.get("after", 0)
    if type(after) is not int or not 0 <= after < 2**63:
        raise WireError("after: expected a sequence number")
    seqs = body.get("seqs", [])
    if "seqs" in shape and not (isinstance(seqs, list) and 0 < len(seqs) <= MAX_ERASE):
        raise WireError(f"seqs: expected a list of 1 to {MAX_ERASE} sequence numbers")
    if not all(type(seq) is int and 0 < seq < 2**63 for seq in seqs):
        raise WireError("seqs: every item must be a sequence number")
    reply_to = body.get("reply_to")
    if "reply_to" in shape and (not isinstance(reply_to, str) or not REPLY_KEY.fullmatch(reply_to)):
        raise WireError("reply_to: expected an X25519 public key in base64")
    return PartyRequest(request_id, party, kind, machine, day, after, tuple(seqs), reply_to)


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
