"""One student's records, gathered from the parties that hold them; or erased there.

The school turns a student into what each party knows: the card for the issuer (which answers the
machine-days that card settled on), and, for each of those machine-days, every pseudonym the card
could have had that day for the vendor (one per minute, from the term key: a visit pseudonym is
``HMAC(term key, minute | uid)``). Days without a settlement (a refused visit only) are asked only
when the request names them (``extra_days``): the vendor is asked about every machine then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from firmware.errors import VendingError
from firmware.identity.keys import KEY_FILE, TermKeyError, read_key
from firmware.identity.pseudonym import Pseudonymizer
from firmware.reporting.sealed import seal
from simulator.backends.requests import MAX_PSEUDONYMS, PartyRequest, new_request_id
from simulator.school.party_client import PartyClient
from simulator.school.roster import Student


class TermKeys:
    """The school's keys of one term: ``DIR/term_key.json`` for every machine, or ``DIR/<machine>/term_key.json``."""

    def __init__(self, directory: Path, term: str) -> None:
        self.term = term
        self._keys: dict[str, Pseudonymizer] = {}
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


def day_pseudonyms(pseudonymizer: Pseudonymizer, uid: str, day: date, zone: ZoneInfo) -> list[str]:
    """Every pseudonym ``uid`` could carry on the local ``day``: one per UTC minute of it."""
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    minutes = int((end - start).total_seconds() // 60)
    return [pseudonymizer(uid, start + timedelta(minutes=m)) for m in range(minutes)]


@dataclass
class SubjectRecords:
    """What the parties hold of one student in one term."""

    student: Student
    term: str
    settlements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the issuer's days and weeks
    records: list[dict[str, Any]] = field(default_factory=list)  # the vendor's (machine, seq, kind, payload)
    asked: list[tuple[str, str]] = field(default_factory=list)  # (machine, day) the vendor was asked about


class SubjectRequests:
    """Access and erasure for one student, through the parties' backends."""

    def __init__(self, client: PartyClient, keys: TermKeys, seal_public: bytes, zone: ZoneInfo) -> None:
        self.client = client
        self.keys = keys
        self.seal_public = seal_public
        self.zone = zone

    def settlements(self, student: Student) -> dict[str, list[dict[str, Any]]]:
        """The issuer's answer: ``days`` the card took part in (day_total), ``weeks`` of per-card totals."""
        sealed = seal({"uid": student.card_uid}, self.seal_public)
        answer = self.client.ask(PartyRequest(new_request_id(), "issuer", "access", sealed=sealed))
        found: dict[str, list[dict[str, Any]]] = {}
        for part in ("days", "weeks"):
            items = answer.get(part)
            found[part] = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
        return found

    def machine_days(
        self,
        settlements: dict[str, list[dict[str, Any]]],
        extra_days: Iterable[date],
        student: Student | None = None,
        machines: Iterable[str] = (),
    ) -> list[tuple[str, str]]:
        """The settled machine-days (each day of a settled week), and every machine on each named day.

        The machines: those with a key of their own, those the settlements name, the student's machine
        on the roster, and any given. With one key for every machine and no settlement on a named day,
        that may be none: then the request fails, naming the day, instead of answering "nothing found".
        """
        wanted = {(str(d["machine"]), str(d["day"])) for d in settlements.get("days", [])}
        wanted |= {(str(w["machine"]), str(day)) for w in settlements.get("weeks", []) for day in w["days"]}
        known = set(self.keys.machines) | {machine for machine, _ in wanted} | set(machines)
        if student is not None and student.machine:
            known.add(student.machine)
        days = list(extra_days)
        if days and not known:
            raise VendingError(
                f"no machine to ask about {', '.join(d.isoformat() for d in days)}: the term's key serves every "
                "machine, no settlement names the card on those days and the roster names no machine for the "
                "student; name the school's machines with --machine ID"
            )
        wanted |= {(machine, day.isoformat()) for day in days for machine in known}
        if not wanted:
            raise VendingError(
                "nothing to ask: no settlement names the card in this term; name the days with --day DAY "
                "(refusals and unsettled days appear in no settlement)"
            )
        return sorted(wanted)

    def _ask_vendor(self, kind: str, student: Student, machine: str, day: str) -> list[dict[str, Any]]:
        pseudonymizer = self.keys.for_machine(machine)
        if pseudonymizer is None:
            return []  # a machine outside this term's keys never carried its pseudonyms
        names = day_pseudonyms(pseudonymizer, student.card_uid, date.fromisoformat(day), self.zone)
        found: list[dict[str, Any]] = []
        for start in range(0, len(names), MAX_PSEUDONYMS):
            chunk = tuple(names[start : start + MAX_PSEUDONYMS])
            answer = self.client.ask(PartyRequest(new_request_id(), "vendor", kind, machine, day, chunk))
            items = answer.get("records" if kind == "access" else "erased")
            found += [dict(item, machine=machine) for item in items or [] if isinstance(item, dict)]
        return found

    def gather(
        self, kind: str, student: Student, extra_days: Iterable[date] = (), machines: Iterable[str] = ()
    ) -> SubjectRecords:
        """``access``: the records every party holds; ``erase``: what the vendor deleted (machine, seq, kind).

        The issuer keeps its money records for its own legal period, so they are listed, not erased.
        """
        result = SubjectRecords(student, self.keys.term, self.settlements(student))
        for machine, day in self.machine_days(result.settlements, extra_days, student, machines):
            result.asked.append((machine, day))
            result.records += self._ask_vendor(kind, student, machine, day)
        return result
