"""The issuer + vendor join measurement, and the day_total settlement that defeats it."""

from __future__ import annotations

import json

import jsonschema
import yaml

from firmware.reporting.sealed import open_settlement
from simulator.dev_keys import DevKeys
from simulator.privacy.linkage import Views, day_views, join_key, pinned_share
from tests.conftest import ROOT

SCHEMAS = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())["components"]["schemas"]


def test_pinned_share_on_a_hand_checked_example():
    views = Views(
        vendor={"p1": (25, 1), "p2": (25, 1), "p3": (40, 2), "p4": (60, 3)},
        issuer={"c1": (25, 1), "c2": (25, 1), "c3": (40, 2), "c4": (60, 2)},
    )
    # p1/p2 share a key with two cards: ambiguous; p3 matches c3 alone: pinned; p4 matches no card
    assert pinned_share(views, lambda t: t) == 0.25
    assert pinned_share(views, lambda t: t[0]) == 0.5  # amounts alone: p3 and p4 (c4 has 60) are pinned


def test_day_total_settlement_pins_fewer_pseudonyms_on_a_300_student_day():
    per_card = day_views(300, 1, "per_card")
    day_total = day_views(300, 1, "day_total")
    # the same day (fresh term keys, so other pseudonyms): the vendor sees the same purchases
    assert sorted(per_card.vendor.values()) == sorted(day_total.vendor.values()) and len(per_card.vendor) > 20
    baseline = pinned_share(per_card, join_key(per_card))
    mitigated = pinned_share(day_total, join_key(day_total))
    assert baseline > 0, "the per-card settlement should be joinable on this day"
    assert mitigated < baseline
    assert mitigated == (1.0 if len(day_total.vendor) == 1 else 0.0)


def test_day_total_document_matches_the_contract(tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from firmware.domain import JournalEntry
    from firmware.reporting.reporter import MqttReporter

    keys = DevKeys(tmp_path / "keys")
    reporter = MqttReporter(
        "TPE-1",
        ZoneInfo("Asia/Taipei"),
        "TWD",
        stock=dict,
        daily_totals=lambda day: [("04A1B2C3D4E5F6", 40, 2), ("DEADBEEF", 25, 1)],
        low_stock=2,
        issuer_public_key=keys.seal_public,
        identity=keys.machine("TPE-1"),
        settlement="day_total",
    )
    entry = JournalEntry(
        "day_closed", datetime(2026, 3, 2, 18, tzinfo=ZoneInfo("Asia/Taipei")), None, {"day": "2026-03-02"}
    )
    (message,) = reporter.messages_for(entry)
    document = open_settlement(
        message.payload["sealed"], keys.seal_private, lambda e: keys.enrolment.verify("TPE-1", e)
    )
    assert document == {
        "machine": "TPE-1",
        "day": "2026-03-02",
        "currency": "TWD",
        "amount": 65,
        "count": 3,
        "cards": ["04A1B2C3D4E5F6", "DEADBEEF"],
    }
    schema = {**SCHEMAS["settlement-document"], "components": {"schemas": SCHEMAS}}
    jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(document)))
