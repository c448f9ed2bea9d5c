"""Every shipped scenario over MQTT: each message matches docs/asyncapi.yaml, and no card uid leaks anywhere."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from simulator.backends.contract import validator
from simulator.cli.output import EventPrinter
from simulator.scenarios import load_scenario, run_scenario
from tests.conftest import ROOT, SCENARIOS

TOPIC_SCHEMA = {
    "sale": "sale",
    "denial": "denial",
    "stock": "stock",
    "alert": "alert",
    "cmd-result": "cmd-result",
    "status": "status",
    "heartbeat": "heartbeat",
    "ack": "ack",
    "settlement": "settlement",
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
        kind = topic.split("/")[-1]
        if "/cmd/" in topic:
            continue
        envelope = json.loads(payload)
        errors = list(validator("signed").iter_errors(envelope))
        assert not errors, f"{topic}: not a signed envelope: {errors[0].message}"
        errors = list(validator(TOPIC_SCHEMA[kind]).iter_errors(json.loads(envelope["payload"])))
        assert not errors, f"{topic}: {errors[0].message}"

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
    assert totals == {"04A1B2C3D4E5F6": (40, 2), "04B2C3D4E5F607": (30, 2), "0499887766AA01": (35, 1)}
