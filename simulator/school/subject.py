"""One student's records, found by the school in whole slices of the parties' data; or erased there.

No request names the student, the card, a pseudonym, or a day chosen for the student: the school
asks each party for every machine-day it holds of the school's machines (``days``, then ``access``
page by page), the same requests whoever the student is, and finds the student in the answers
itself. A vendor record belongs to the student when its pseudonym is ``HMAC(term key, txn | uid)``
for the record's own transaction and the student's card (firmware/identity/pseudonym.py); an issuer
line when it names the card. Everything else is dropped as it is read and never written anywhere.

An erasure then names exactly the records matched, by sequence number; the vendor destroys them
before it answers, and the receipt lists what went (docs/privacy.md, "Access and erasure requests").
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from nacl.public import PrivateKey

from firmware.errors import VendingError
from firmware.identity.keys import KEY_FILE, TermKeyError, read_key
from firmware.identity.pseudonym import Pseudonymizer, normalise_uid
from firmware.reporting.sealed import unseal
from simulator.backends.requests import MAX_ERASE, PartyRequest, new_request_id
from simulator.school.roster import Student


class TermKeys:
    """The school's keys of one term: ``DIR/term_key.json`` for every machine, or ``DIR/<machine>/term_key.json``."""

    def __init__(self, directory: Path, term: str) -> None:
        self.term = term
        self._keys: dict[str, Pseudonymizer] = {}
        if not directory.is_dir():
            raise TermKeyError(f"--terms {directory}: no such directory (the school's term keys: DIR/term_key.json "
                               "or DIR/<machine>/term_key.json)")  # fmt: skip
        for path in sorted([directory / KEY_FILE, *directory.glob(f"*/{KEY_FILE}")]):
            if not path.exists():
                continue
            found = read_key(path.parent)
            if found.term == term:
                name = "" if path.parent == directory else path.parent.name
                self._keys[name] = Pseudonymizer(found.term, found.key)
        if not self._keys:
            raise TermKeyError(
                f"--terms {directory}: no key of term {term!r} (retired, or never held here): "
                "nobody can link that term's pseudonyms to a card any more"
            )

    @property
    def machines(self) -> list[str]:
        """Machines with a key of their own (empty when one key serves every machine)."""
        return sorted(name for name in self._keys if name)

    def for_machine(self, machine: str) -> Pseudonymizer | None:
        return self._keys.get(machine) or self._keys.get("")


@dataclass
class SubjectRecords:
    """What the parties hold of one student in one term, and what was read to find it."""

    student: Student
    term: str
    settlements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the issuer's days and weeks
    records: list[dict[str, Any]] = field(default_factory=list)  # the vendor's (machine, seq, kind, payload)
    asked: list[tuple[str, str]] = field(default_factory=list)  # (machine, day) read in full from the vendor
    read: int = 0  # vendor records read to find the student's (every record of those machine-days)


class Asks(Protocol):
    """Who carries a request to its party and brings back the checked answer: the broker, or a test bench."""

    def ask(self, request: PartyRequest) -> dict[str, Any]: ...


class SubjectRequests:
    """Access and erasure for one student, through the parties' backends, by whole slices."""

    def __init__(self, client: Asks, keys: TermKeys, machines: Iterable[str]) -> None:
        """``machines``: the school's machines (with the term keys' own): the same list for every student."""
        self.client = client
        self.keys = keys
        self.machines = sorted(set(machines) | set(keys.machines))

    def _days(self, party: str, machine: str) -> list[str]:
        answer = self.client.ask(PartyRequest(new_request_id(), party, "days", machine))
        return [day for day in answer.get("days") or [] if isinstance(day, str)]

    def _vendor_day(self, machine: str, day: str) -> list[dict[str, Any]]:
        """Every sale and refusal of one machine-day, page by page."""
        records: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:
            answer = self.client.ask(PartyRequest(new_request_id(), "vendor", "access", machine, day, after=after))
            page = [item for item in answer.get("records") or [] if isinstance(item, dict)]
            records += page
            following = answer.get("next")
            after = following if type(following) is int and page and following > after else None
        return records

    def _issuer_day(self, machine: str, day: str) -> dict[str, Any]:
        """Every settlement line of one machine-day, opened with this request's own key."""
        reply = PrivateKey.generate()
        reply_to = base64.b64encode(bytes(reply.public_key)).decode("ascii")
        answer = self.client.ask(PartyRequest(new_request_id(), "issuer", "access", machine, day, reply_to=reply_to))
        sealed = answer.get("sealed")
        if not isinstance(sealed, str):
            raise VendingError(f"the issuer's answer for {machine} {day} carries no sealed slice")
        return unseal(sealed, bytes(reply))

    def _machines(self) -> list[str]:
        if not self.machines:
            raise VendingError(
                "no machine to ask: the term's key serves every machine and no machine was named; "
                "name the school's machines with --machine ID (or on the roster's machine column)"
            )
        return self.machines

    def settlements(self, student: Student) -> dict[str, list[dict[str, Any]]]:
        """The issuer's lines about the card: ``days`` it took part in (day_total), ``weeks`` (per_card)."""
        card = normalise_uid(student.card_uid)
        found: dict[str, list[dict[str, Any]]] = {"days": [], "weeks": []}
        for machine in self._machines():
            for day in self._days("issuer", machine):
                inside = self._issuer_day(machine, day)
                if card in (inside.get("cards") or []):
                    found["days"].append({"machine": machine, "day": day})
                found["weeks"] += [
                    {"machine": machine, **{key: line[key] for key in ("week", "days", "amount", "count")}}
                    for line in inside.get("weeks") or []
                    if isinstance(line, dict) and line.get("uid") == card
                ]
        return found

    def visits(self, student: Student, result: SubjectRecords) -> list[dict[str, Any]]:
        """The vendor's records of the student's visits, read from every machine-day the vendor holds."""
        mine: list[dict[str, Any]] = []
        for machine in self._machines():
            naming = self.keys.for_machine(machine)
            for day in self._days("vendor", machine):
                result.asked.append((machine, day))
                records = self._vendor_day(machine, day)
                result.read += len(records)
                if naming is not None:
                    mine += [dict(r, machine=machine) for r in records if _is_theirs(r, naming, student.card_uid)]
        return mine

    def gather(self, kind: str, student: Student, days: Iterable[date] = ()) -> SubjectRecords:
        """``access``: what every party holds of the student; ``erase``: what the vendor destroyed.

        ``days`` limits an erasure to those days (every day when none). The issuer keeps its money
        records for its own legal period, so they are listed, not erased.
        """
        result = SubjectRecords(student, self.keys.term, self.settlements(student))
        mine = self.visits(student, result)
        if kind == "access":
            result.records = mine
            return result
        named = {day.isoformat() for day in days}
        chosen = [r for r in mine if not named or str(r["payload"].get("time", ""))[:10] in named]
        for machine in sorted({r["machine"] for r in chosen}):
            seqs = sorted(int(r["seq"]) for r in chosen if r["machine"] == machine)
            for start in range(0, len(seqs), MAX_ERASE):
                request = PartyRequest(
                    new_request_id(), "vendor", "erase", machine, seqs=tuple(seqs[start : start + MAX_ERASE])
                )
                answer = self.client.ask(request)
                result.records += [item for item in answer.get("erased") or [] if isinstance(item, dict)]
        return result


def _is_theirs(record: dict[str, Any], naming: Pseudonymizer, card_uid: str) -> bool:
    payload = record.get("payload")
    if not isinstance(payload, dict):
        return False
    pseudonym, txn = payload.get("pseudonym"), payload.get("txn")
    return isinstance(pseudonym, str) and isinstance(txn, str) and naming(card_uid, txn) == pseudonym
