"""The privacy manifest: generated from the schemas, current in the docs, and covering the wire."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from firmware.identity.signing import Signed
from firmware.reporting.sealed import open_settlement
from simulator.privacy.manifest import BEGIN, END, SPEC, manifest, markdown
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from tests.conftest import ROOT

NOT_REPORTS = ("ack",)  # acks go to the machine; commands arrive at it (their schemas are in asyncapi.yaml)


def test_the_manifest_in_the_docs_is_generated_from_the_schemas() -> None:
    doc = (ROOT / "docs/privacy.md").read_text()
    shown = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
    assert shown == markdown(manifest()).strip("\n"), "regenerate: vending privacy manifest --write docs/privacy.md"


def test_a_field_without_a_description_stops_the_generator(tmp_path: Path) -> None:
    spec = tmp_path / "asyncapi.yaml"
    text = SPEC.read_text()
    assert ", description: 'what sold'}" in text
    spec.write_text(text.replace(", description: 'what sold'}", "}", 1))
    with pytest.raises(ValueError, match=r"sale\.product has no description"):
        manifest(spec)


def verify(world: ReportingWorld, payload: dict[str, Any], envelope: Mapping[str, Any]) -> Signed:
    """The issuer's check of the machine's signature inside the seal."""
    return world.keys.enrolment.verify(str(payload["machine"]), envelope)


def test_writing_the_manifest_into_a_document_without_its_markers_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """It was exit 70 with a traceback (an unpacking error), as for the privacy figures and the docs."""
    from tests.simulator.cli.test_cli import vending

    plain = tmp_path / "notes.md"
    plain.write_text(f"# notes\n{BEGIN}\nonly the opening marker\n")
    out = vending("privacy", "manifest", "--write", str(plain))
    assert out.returncode == 2 and f"{plain}: no section between {BEGIN} and {END}" in out.stderr, out.stderr
    assert plain.read_text() == f"# notes\n{BEGIN}\nonly the opening marker\n"
    marked = tmp_path / "privacy.md"
    marked.write_text(f"before\n{BEGIN}\nold\n{END}\nafter\n")
    assert vending("privacy", "manifest", "--write", str(marked)).returncode == 0
    text = marked.read_text()
    assert text.startswith(f"before\n{BEGIN}\n") and text.endswith(f"{END}\nafter\n") and markdown(manifest()) in text


def test_every_field_on_the_wire_during_the_demo_day_is_in_the_manifest(world, capture, tmp_path) -> None:
    run_scenario(load_scenario(ROOT / "configs/scenarios/demo-school-day.yaml"), tmp_path / "machine", attach=world)
    parties = manifest()["parties"]
    receives = {kind: fields for party in parties.values() for kind, fields in party["messages"].items()}
    seen: set[str] = set()
    for topic, raw, _ in capture.unbatched():
        kind = topic.split("/")[-1]
        if "/cmd/" in topic or kind in NOT_REPORTS:
            continue
        payload = json.loads(json.loads(raw)["payload"])
        assert kind in receives, f"{topic}: a message kind the manifest does not list"
        assert set(payload) <= set(receives[kind]), f"{topic}: {set(payload) - set(receives[kind])} not in manifest"
        seen.add(kind)
        if kind == "settlement":
            document = open_settlement(payload["sealed"], world.keys.seal_private, partial(verify, world, payload))
            assert set(document) <= set(receives["settlement-document"])
            seen.add("settlement-document")
    assert {"sale", "denial", "summary", "settlement", "settlement-document", "heartbeat", "status"} <= seen
