"""Every shipped scenario over MQTT: each message matches docs/asyncapi.yaml, and no card uid leaks anywhere."""

from __future__ import annotations

import io
import json
import logging
from datetime import date
from pathlib import Path

import pytest
import yaml

from firmware.app.console import EventPrinter
from firmware.cards.purse import CardError, CardRecord, Sam, issue_image
from firmware.domain import CARD_UID, MACHINE_ID, SCHOOL_CODE
from firmware.reporting import codec
from simulator.backends.contract import validator
from simulator.scenarios import load_scenario, run_scenario
from tests.conftest import ROOT, SCENARIOS

TOPIC_SCHEMA = {
    "sale": "sale",
    "denial": "denial",
    "stock": "stock",
    "alert": "alert",
    "cmd-result": "cmd-result",
    "summary": "summary",
    "status": "status",
    "heartbeat": "heartbeat",
    "ack": "ack",
    "settlement": "settlement",
    "account": "account",
    "unresolved": "unresolved",
    "hotlist": "hotlist",
    "delta": "hotlist",
    "controls": "controls",
    "guardian-alert": "guardian-alert",
    "credit": "credit",
    "credit-given": "credit-given",
    "credits": "credits",
    "auth": "auth-request",
    "auth-answer": "auth-answer",
}


def uid_spellings(uid: str) -> set[str]:
    """Every way a uid could leak: hex both cases, with separators, and its decimal forms."""
    raw = bytes.fromhex(uid)
    pairs = [uid[i : i + 2] for i in range(0, len(uid), 2)]
    forms = {uid.upper(), uid.lower()}
    for sep in (":", "-", " "):
        forms |= {sep.join(pairs).upper(), sep.join(pairs).lower()}
    forms |= {str(int.from_bytes(raw, "big")), str(int.from_bytes(raw, "little"))}
    if len(raw) >= 4:  # 10-digit readers print a 32-bit number
        forms |= {
            str(int.from_bytes(raw[:4], "big")),
            str(int.from_bytes(raw[:4], "little")),
            str(int.from_bytes(raw[-4:], "big")),
            str(int.from_bytes(raw[-4:], "little")),
        }
    return {f for f in forms if len(f) >= 6}


def test_the_wire_s_card_uid_is_the_domain_s():
    """Scenarios, rosters, the issuer's accounts and hotlist, and the contract all take the same uids."""
    contract = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())
    assert contract["components"]["schemas"]["card-uid"]["pattern"] == CARD_UID.pattern
    assert all(CARD_UID.match(uid) for uid in ("04A1B2C3", "1A2B3C4D5E", "04A1B2C3D4E5F6", "04A1B2C3D4E5F6071829"))
    assert not any(CARD_UID.match(uid) for uid in ("04A1B2", "04a1b2c3", "04A1B2C3D4E5", "04A1B2C3D4E5F60"))


def test_the_wire_s_machine_and_school_are_the_domain_s():
    """A topic's machine and school are what configs take; a school's code is also what its cards' records hold."""
    parameters = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())["components"]["parameters"]
    assert parameters["machine"]["schema"]["pattern"] == MACHINE_ID.pattern
    assert parameters["school"]["schema"]["pattern"] == SCHOOL_CODE.pattern
    sam = Sam(bytes(32))
    for code in ("353301", "A", "TPE1"):
        assert issue_image(bytes(4), CardRecord("student", code, date(2026, 3, 2)), 0, sam)
    for code in ("3533011", "TPE-DAAN", "35_01", "台北", "", "353301\n"):
        assert not SCHOOL_CODE.fullmatch(code)
        with pytest.raises(CardError, match="school code"):
            issue_image(bytes(4), CardRecord("student", code, date(2026, 3, 2)), 0, sam)


def test_uid_spellings_cover_separators_and_decimals():
    forms = uid_spellings("DEADBEEF")
    assert {"DEADBEEF", "deadbeef", "DE:AD:BE:EF", "de-ad-be-ef", "3735928559", "4022250974"} <= forms


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_messages_match_contract_and_leak_no_uid(path: Path, world, capture, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    scenario = load_scenario(path)
    events = io.StringIO()
    result = run_scenario(scenario, tmp_path / "machine", EventPrinter(True, events), attach=world)
    assert result.passed
    assert capture.messages, "nothing was published"

    for topic, payload, _ in capture.messages:
        if topic.endswith("/batch"):
            batch = json.loads(payload)
            errors = list(validator("batch").iter_errors(batch))
            assert not errors, f"{topic}: not a batch: {errors[0].message}"
            errors = list(validator("batch-manifest").iter_errors(json.loads(batch["manifest"]["payload"])))
            assert not errors, f"{topic}: not a batch manifest: {errors[0].message}"
    for topic, payload, _ in capture.unbatched():
        kind = topic.split("/")[-1]
        if "/cmd/" in topic:
            continue
        if topic.startswith("issuer/v1/hotlist") or kind in ("controls", "credits"):  # sealed whole (pushed.py)
            errors = list(validator(TOPIC_SCHEMA[kind]).iter_errors(json.loads(payload)))
            assert not errors, f"{topic}: {errors[0].message}"
            continue
        envelope = json.loads(payload)
        if "protected" not in envelope:  # a report out of a batch: its envelope was checked above
            envelope = {"protected": "batched", "payload": envelope["payload"], "signature": "A" * 86}
        errors = list(validator("signed").iter_errors(envelope))
        assert not errors, f"{topic}: not a signed envelope: {errors[0].message}"
        errors = list(validator(TOPIC_SCHEMA[kind]).iter_errors(json.loads(envelope["payload"])))
        assert not errors, f"{topic}: {errors[0].message}"
        if codec.decoder(TOPIC_SCHEMA[kind]) is not None:  # the receivers' fast path takes every real report
            assert codec.decode_checked(TOPIC_SCHEMA[kind], envelope["payload"]) is not None, f"{topic}: typed refusal"

    uids = {card.uid for card in scenario.cards.values()}
    uids |= {step.value.uid for step in scenario.steps if step.kind == "tap" and not isinstance(step.value, str)}
    vendor_db = b"".join(p.read_bytes() for p in (world.workdir).glob("vendor.db*"))
    haystacks = {
        "mqtt payloads": b"\n".join(p for _, p, _ in capture.messages).decode("utf-8", "replace"),
        "json events": events.getvalue(),
        "log lines": "\n".join(r.getMessage() for r in caplog.records),
        "vendor database": vendor_db.decode("latin-1"),
    }
    for uid in uids:
        for form in uid_spellings(uid):
            for where, text in haystacks.items():
                assert form not in text, f"card uid {uid} leaked as {form!r} in {where}"


def test_settlement_is_sealed_and_issuer_reads_it(world, capture, tmp_path):
    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")
    run_scenario(scenario, tmp_path / "machine", attach=world)
    sealed = [json.loads(envelope["payload"]) for envelope in capture.json_of("/settlement")]
    assert len(sealed) >= 1
    assert all(set(msg) == {"machine", "seq", "day", "sealed"} for msg in sealed)
    from firmware.reporting.sealed import open_settlement, unseal

    inside = unseal(sealed[0]["sealed"], world.keys.seal_private)
    assert validator("signed").is_valid(inside), "the sealed settlement is not signed inside"
    machine = sealed[0]["machine"]
    document = open_settlement(
        sealed[0]["sealed"], world.keys.seal_private, lambda e: world.keys.enrolment.verify(machine, e)
    )
    errors = list(validator("settlement-document").iter_errors(document))
    assert not errors, errors[0].message
    totals = {
        row[0]: (row[1], row[2]) for row in world.issuer.store.execute("SELECT uid, amount, count FROM settlements")
    }
    # day_total, the default: which cards took part, no per-card amounts; the day's money exact
    assert totals == {"04A1B2C3D4E5F6": (None, None), "04B2C3D4E5F607": (None, None), "0499887766AA01": (None, None)}
    assert world.issuer.store.execute("SELECT amount, count, cards FROM settlement_days") == [(105, 5, 3)]


@pytest.mark.parametrize("name", ["guardian-controls", "insufficient-funds"])
def test_family_and_money_denials_reach_the_vendor_as_counts_and_the_day_as_a_summary(world, capture, tmp_path, name):
    """A guardian's opt-out or limit and a low balance tell the vendor nothing about whose they were."""
    from firmware.reporting.reporter import FAMILY_AND_MONEY

    scenario = load_scenario(ROOT / "configs/scenarios" / f"{name}.yaml")
    run_scenario(scenario, tmp_path / "machine", attach=world)
    denials = [json.loads(e["payload"]) for e in capture.json_of("/denial")]
    private = [d for d in denials if d["reason"] in FAMILY_AND_MONEY]
    assert private, f"{name} should refuse on a family or money rule"
    assert all(d["pseudonym"] is None and d["profile"] is None for d in private)
    sales = {m["seq"]: m for m in (json.loads(e["payload"]) for e in capture.json_of("/sale"))}
    vended = [s for s in sales.values() if s["outcome"] == "vended"]
    # at least once on the wire: a resend repeats a report under its seq
    summaries = {m["seq"]: m for m in (json.loads(e["payload"]) for e in capture.json_of("/summary"))}.values()
    assert sum(summary["sales"] for summary in summaries) == len(vended)
    settled = dict(world.issuer.store.execute("SELECT day, cards FROM settlement_days"))
    assert {summary["day"]: summary["buyers"] for summary in summaries} == settled, (
        "distinct buyers per day: the cards the issuer settled, however many visits"
    )
