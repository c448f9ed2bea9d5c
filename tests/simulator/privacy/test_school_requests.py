"""The school's access and erasure requests, end to end on the demo day, and hostile requests refused."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from firmware.identity.keys import TermKeyError, retire_key
from firmware.identity.pseudonym import normalise_uid
from firmware.reporting.signed import canonical, sign_text
from simulator.backends.contract import validator
from simulator.backends.requests import PartyRequest, answer_topic, new_request_id, request_topic
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.school.export import write_export
from simulator.school.party_client import PartyClient
from simulator.school.roster import Student
from simulator.school.subject import SubjectRequests, TermKeys
from simulator.servers.broker_setup import TOOLS
from tests.conftest import ROOT
from tests.support.reporting import broker_client

DEMO = ROOT / "configs/scenarios/demo-school-day.yaml"
SCHEMA = json.loads((ROOT / "docs/access-export.schema.json").read_text())


def demo_day(world: ReportingWorld, tmp_path: Path) -> tuple[Path, dict[str, Student]]:
    scenario = load_scenario(DEMO)
    state_dir = tmp_path / "machine"
    assert run_scenario(scenario, state_dir, attach=world).passed
    students = {name: Student(name, normalise_uid(card.uid), card.profile) for name, card in scenario.cards.items()}
    return state_dir, students


def requests(client: PartyClient, terms: Path) -> SubjectRequests:
    """The school's requests with the demo machine's key; the school's machines are the demo machine."""
    term = json.loads((terms / "term_key.json").read_text())["term"]
    with sqlite3.connect(terms / "machine.db") as machine_db:
        (machine,) = machine_db.execute("SELECT value FROM meta WHERE key = 'machine_id'").fetchone()
    return SubjectRequests(client, TermKeys(terms, term), [machine])


def school_client(world: ReportingWorld) -> PartyClient:
    parties = {"vendor": world.keys.vendor.public, "issuer": world.keys.issuer.public}
    return PartyClient(world.party_address(TOOLS["school"]), world.keys.school, parties, wait=5.0)


def vendor_rows(world: ReportingWorld) -> list[tuple]:
    assert world.vendor is not None
    return world.vendor.store.execute("SELECT machine, seq, kind, payload FROM reports ORDER BY seq")


def others_money(world: ReportingWorld, excluded: set[str]) -> tuple[list, list]:
    """The vendor's sales not under ``excluded`` pseudonyms, and every issuer settlement line."""
    sales = [
        (seq, json.loads(payload)["price"], json.loads(payload)["outcome"])
        for _, seq, kind, payload in vendor_rows(world)
        if kind == "sale" and json.loads(payload).get("pseudonym") not in excluded
    ]
    assert world.issuer is not None
    settled = world.issuer.store.execute("SELECT machine, day, uid, amount, count FROM settlements ORDER BY uid")
    return sales, settled


def test_export_erase_export_round_trip_on_the_demo_day(world: ReportingWorld, capture, tmp_path: Path) -> None:
    state_dir, students = demo_day(world, tmp_path)
    amy = students["amy"]
    with sqlite3.connect(state_dir / "machine.db") as machine_db:
        amy_txns = {row[0] for row in machine_db.execute("SELECT txn_id FROM vends WHERE uid = ?", (amy.card_uid,))}
    assert amy_txns, "the demo day sells to amy"
    with school_client(world) as client:
        school = requests(client, state_dir)
        found = school.gather("access", amy)
        body = write_export(found, tmp_path / "export", generated=_now())
        jsonschema.validate(body, SCHEMA)
        kinds = sorted(record["kind"] for record in body["vendor"])
        assert kinds == ["denial", "sale"]  # her sale at 07:30 and the lunchtime lockout
        assert {r["txn"] for r in body["vendor"] if r["kind"] == "sale"} == amy_txns
        assert [(d["machine"], d["day"]) for d in body["issuer"]["days"]] == [(found.asked[0][0], "2026-03-02")]
        naming = school.keys.for_machine(found.asked[0][0]) or _fail()
        assert all(naming(amy.card_uid, r["txn"]) == r["pseudonym"] for r in body["vendor"])
        assert found.read == len([row for row in vendor_rows(world) if row[2] in ("sale", "denial")])
        rows = 1 + len(body["vendor"]) + len(body["issuer"]["days"]) + len(body["issuer"]["weeks"])
        assert (tmp_path / "export/access.csv").read_text().count("\n") == rows
        assert "pseudonym" in (tmp_path / "export/summary.md").read_text()
        amy_pseudonyms = {r["pseudonym"] for r in body["vendor"]}
        before = others_money(world, amy_pseudonyms)

        erased = school.gather("erase", amy)
        assert sorted((r["seq"], r["kind"]) for r in erased.records) == sorted(
            (r["seq"], r["kind"]) for r in body["vendor"]
        )
        again = school.gather("access", amy)
    assert again.records == [] and again.settlements == found.settlements  # the issuer keeps money records
    everything = json.dumps(vendor_rows(world))
    assert not any(pseudonym in everything for pseudonym in amy_pseudonyms)
    assert others_money(world, amy_pseudonyms) == before
    assert sum(1 for row in vendor_rows(world) if row[2] == "erased") == len(body["vendor"])
    exchanged = [(topic, raw) for topic, raw, _ in capture.messages if topic.startswith("school/v1/")]
    assert {topic for topic, _ in exchanged} == {request_topic(p) for p in ("vendor", "issuer")} | {
        answer_topic(p) for p in ("vendor", "issuer")
    }
    for topic, raw in exchanged:  # every request and answer matches docs/asyncapi.yaml; no card number on the wire
        _, _, party, direction = topic.split("/")
        payload = json.loads(json.loads(raw)["payload"])
        assert not list(validator(f"{party}-{direction}").iter_errors(payload)), topic
        assert not any(uid in raw.decode() for uid in (s.card_uid for s in students.values()))
    assert not any(p in json.dumps(_requests_sent(capture)) for p in amy_pseudonyms), "no request names a visit"


def _requests_sent(capture) -> list[dict]:
    """The requests the school published, each without what is new every time (its id, its reply key)."""
    sent = []
    for topic, raw, _ in capture.messages:
        if topic in (request_topic("vendor"), request_topic("issuer")):
            body = json.loads(json.loads(raw)["payload"])
            sent.append({key: value for key, value in body.items() if key not in ("id", "reply_to")})
    return sent


def test_an_access_request_is_the_same_whoever_asks(world: ReportingWorld, capture, tmp_path: Path) -> None:
    """Issue 30: the vendor and the issuer see the same requests for any student, so they cannot tell who asked."""
    state_dir, students = demo_day(world, tmp_path)
    seen = []
    with school_client(world) as client:
        school = requests(client, state_dir)
        for name in ("amy", "lin"):
            _settled(capture)  # the last round's copies have all arrived before this round is counted
            capture.messages.clear()
            found = school.gather("access", students[name])
            assert found.records, f"the demo day has {name}'s visits"
            # the capture is one more subscriber: its copies may trail the parties' answers, and MQTT orders
            # messages per topic only (the vendor's and the issuer's requests interleave as they come)
            seen.append(sorted(_settled(capture), key=lambda request: json.dumps(request, sort_keys=True)))
    assert seen[0] == seen[1] and {r["kind"] for r in seen[0]} == {"days", "access"}


def _settled(capture, quiet_s: float = 0.5, limit_s: float = 15.0) -> list[dict]:
    """The requests captured once no new one has arrived for ``quiet_s``."""
    deadline, count, since = time.monotonic() + limit_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(capture.messages)
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.05)
    return _requests_sent(capture)


def test_after_an_erasure_no_database_file_of_the_vendor_holds_the_records(world: ReportingWorld, tmp_path: Path):
    """Issue 30: tombstoned rows were still readable in the vendor database's WAL until a checkpoint."""
    state_dir, students = demo_day(world, tmp_path)
    assert world.vendor is not None
    (main_file,) = [row[2] for row in world.vendor.store.execute("PRAGMA database_list") if row[1] == "main"]
    with school_client(world) as client:
        school = requests(client, state_dir)
        found = school.gather("access", students["amy"])
        secrets = {r["payload"][key] for r in found.records for key in ("txn", "pseudonym")}
        files = [Path(main_file + suffix) for suffix in ("", "-wal", "-shm")]
        assert any(s.encode() in f.read_bytes() for f in files if f.exists() for s in secrets), "found before"
        erased = school.gather("erase", students["amy"])
    assert len(erased.records) == len(found.records)
    for file in (f for f in files if f.exists()):
        content = file.read_bytes()
        assert not [s for s in secrets if s.encode() in content], f"{file.name} still holds an erased record"


def test_a_retired_term_key_cannot_find_anyone_again(tmp_path: Path) -> None:
    from simulator.term_keys import simulation_term_key

    simulation_term_key(tmp_path, date(2026, 3, 2))
    term = json.loads((tmp_path / "term_key.json").read_text())["term"]
    assert TermKeys(tmp_path, term).for_machine("m1") is not None
    retire_key(tmp_path, term)
    with pytest.raises(TermKeyError, match="nobody can link"):
        TermKeys(tmp_path, term)


def test_forged_and_malformed_requests_change_nothing(world: ReportingWorld, tmp_path: Path) -> None:
    state_dir, students = demo_day(world, tmp_path)
    rows = vendor_rows(world)
    seqs = [seq for _, seq, kind, _ in rows if kind == "sale"]
    machine = rows[0][0]
    erase = PartyRequest(new_request_id(), "vendor", "erase", machine, seqs=tuple(seqs))
    assert world.vendor is not None
    incidents = world.vendor.incidents
    attacker = broker_client(world, "request-forger")
    try:
        for signer in (world.keys.vendor, world.keys.issuer, world.keys.machine(machine)):  # not the school
            attacker.publish(request_topic("vendor"), sign_text(signer, canonical(erase.document())), qos=1)
        attacker.publish(request_topic("vendor"), json.dumps(erase.document()), qos=1)  # unsigned
        bad = dict(erase.document(), seqs=["' OR 1=1 --"])
        attacker.publish(request_topic("vendor"), sign_text(world.keys.school, canonical(bad)), qos=1)
        attacker.publish(request_topic("vendor"), b"\x00" * 70_000, qos=1)
        deadline = time.monotonic() + 10
        while world.vendor.incidents < incidents + 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        attacker.disconnect()
        attacker.loop_stop()
    assert world.vendor.incidents >= incidents + 6
    assert vendor_rows(world) == rows


def _now():  # noqa: ANN202 - a fixed moment: the export's own time is not under test
    from datetime import UTC, datetime

    return datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def _fail():  # noqa: ANN202
    raise AssertionError("no term key for the demo machine")
