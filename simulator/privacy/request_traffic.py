"""The request attacker: what the vendor and the issuer learn from a school's rights requests.

The school's own request code (simulator/school/subject.py) runs against the vendor's and the
issuer's own answering code, over backends filled with a simulated term's reports, in process: each
request and answer is signed, read and checked exactly as on the broker (only the transport is left
out), so the documents counted are the ones that would cross it. The colluding vendor and issuer see
every request; the attacker pins a requester when the requests made for that student differ from
those made for every other, and counts the records a request names that the vendor still holds
afterwards (visits linked beyond what was erased at once).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.identity.keys import read_key
from firmware.identity.signing import TrustStore
from firmware.journal.outbox import Outbox
from firmware.journal.owner import reading
from firmware.reporting import topics
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.signed import canonical
from simulator.backends.issuer import IssuerBackend
from simulator.backends.requests import PartyRequest, compose, read_answer, read_request
from simulator.backends.service import BackendService
from simulator.backends.store import Report
from simulator.backends.vendor import VendorBackend
from simulator.privacy.term import SimulatedTerm
from simulator.school.roster import Student
from simulator.school.subject import SubjectRequests, TermKeys

NOWHERE = BrokerAddress("127.0.0.1", 9)  # the backends are never connected: answers are handed over in process


@dataclass
class LocalParties:
    """The school's client, wired to the backends' answering code instead of a broker; it keeps the traffic."""

    term: SimulatedTerm
    parties: dict[str, BackendService]
    seen: list[str] = field(default_factory=list)  # every request as its party read it, less its id and reply key
    wire_bytes: int = 0
    messages: int = 0

    def __post_init__(self) -> None:
        self._school = TrustStore([self.term.keys.school.public])
        self._parties = {name: TrustStore([backend.identity.public]) for name, backend in self.parties.items()}

    def ask(self, request: PartyRequest) -> dict[str, Any]:
        backend, school, party = self.parties[request.party], self._school, self._parties[request.party]
        wire = compose(self.term.keys.school, request.document()).encode()
        checked = read_request(wire, request.party, lambda envelope: school.verify(envelope))
        visible = {k: v for k, v in checked.document().items() if k not in ("id", "reply_to")}
        self.seen.append(canonical(visible))
        answer = backend.signed_answer(checked).encode()
        self.wire_bytes += len(wire) + len(answer)
        self.messages += 2
        return read_answer(answer, request.id, lambda envelope: party.verify(envelope))


def backends(term: SimulatedTerm, directory: Path) -> dict[str, BackendService]:
    """The vendor's and the issuer's backends, holding every report the term's machine made."""
    keys = term.keys
    vendor = VendorBackend(NOWHERE, directory / "vendor.db", keys.vendor, keys.enrolment)
    issuer = IssuerBackend(NOWHERE, directory / "issuer.db", keys.seal_private, keys.issuer, keys.enrolment)
    held: dict[str, list[Report]] = {"vendor": [], "issuer": []}
    outbox = Outbox.open(term.db)
    try:
        for topic, payload in outbox.payloads():
            parsed = topics.split(topic)
            assert parsed is not None, f"the machine's own outbox holds a report on {topic}"
            prefix, _, kind = parsed
            stream, party = ("issuer", issuer) if prefix == topics.ISSUER_PREFIX else ("vendor", vendor)
            report = party.report(term.machine, kind, json.loads(payload))
            if report is not None:
                held[stream].append(report)
    finally:
        outbox.close()
    vendor.store.store_many(held["vendor"])
    issuer.store.store_many(held["issuer"])
    return {"vendor": vendor, "issuer": issuer}


def requesters(term: SimulatedTerm, count: int) -> list[Student]:
    """The first ``count`` cards (in uid order) that bought this term, as the school's roster has them."""
    with reading(term.db, "machine") as connection:
        uids = [
            str(uid) for (uid,) in connection.execute("SELECT DISTINCT uid FROM vends ORDER BY uid LIMIT ?", (count,))
        ]
    return [Student(f"s-{n}", uid) for n, uid in enumerate(uids)]


def measure_requests(term: SimulatedTerm, directory: Path, count: int, erase: int) -> dict[str, Any]:
    """Access requests for ``count`` students, then erasure for ``erase`` of them; what the colluders learn."""
    parties = backends(term, directory)
    client = LocalParties(term, parties)
    school = SubjectRequests(client, TermKeys(term.term_keys, read_key(term.term_keys).term), [term.machine])
    logs: list[tuple[str, ...]] = []
    seconds = 0.0
    found: Counter[str] = Counter()
    students = requesters(term, count)
    for student in students:
        start, before = time.perf_counter(), len(client.seen)
        found.update(record["kind"] for record in school.gather("access", student).records)
        seconds += time.perf_counter() - start
        logs.append(tuple(client.seen[before:]))
    sizes = Counter(logs)
    pinned = sum(1 for log in logs if sizes[log] == 1) if len(logs) > 1 else len(logs)
    bytes_per_request, messages_per_request = client.wire_bytes / len(students), client.messages / len(students)
    erased, start = 0, len(client.seen)
    for student in students[:erase]:
        erased += len(school.gather("erase", student).records)
    named = [json.loads(seen) for seen in client.seen[start:]]
    named_seqs = [(doc["machine"], seq) for doc in named if doc["kind"] == "erase" for seq in doc["seqs"]]
    still_held = _still_held(parties["vendor"], named_seqs)
    for backend in parties.values():
        backend.store.close()
    return {
        "requesters": len(students),
        "pinned": pinned,
        "sales_found": found["sale"],
        "sales_held": _sales_of(term, students),  # the machine's own vends of those cards: what must be found
        "refusals_found": found["denial"],
        "erased": erased,
        "named_in_erasures": len(named_seqs),
        "linked_beyond_erased": still_held,
        "bytes_per_request": round(bytes_per_request),
        "messages_per_request": round(messages_per_request),
        "seconds_per_request": round(seconds / len(students), 2),
    }


def _sales_of(term: SimulatedTerm, students: list[Student]) -> int:
    with reading(term.db, "machine") as connection:
        marks = ", ".join("?" * len(students))
        sql = f"SELECT COUNT(*) FROM vends WHERE status IN ('completed', 'refunded') AND uid IN ({marks})"
        return int(connection.execute(sql, [s.card_uid for s in students]).fetchone()[0])


def _still_held(vendor: BackendService, named: list[tuple[str, int]]) -> int:
    """Records an erasure named (by seq) that the vendor still holds afterwards: visits it could keep linked."""
    held = 0
    for machine, seq in named:
        rows = vendor.store.execute("SELECT kind FROM reports WHERE machine = ? AND seq = ?", (machine, seq))
        held += bool(rows) and rows[0][0] in ("sale", "denial")
    return held
