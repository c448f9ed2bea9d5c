"""A report's fields are declared once: the typed record, the wire, the AsyncAPI schema and both databases agree."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import yaml

from firmware.domain import JournalEntry
from firmware.entries import DeniedEntry, SaleEntry
from firmware.reporting.reporter import MqttReporter
from firmware.reporting.reports import REPORT_VIEWS
from simulator.backends.views import view_sql
from tests.conftest import ROOT

SCHEMAS = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())["components"]["schemas"]


def test_each_view_s_columns_are_its_published_report_s_fields():
    for view in REPORT_VIEWS:
        columns = {name for name, _ in view.columns()}
        assert set(SCHEMAS[view.kind]["properties"]) == {"machine", "seq"} | columns, view.kind  # seq: the outbox's


def test_a_journaled_sale_and_denial_read_back_as_they_were_written():
    sale = SaleEntry(slot="A1", product="milk", price=25, pseudonym="p", profile="student", stock=3, capacity=8)
    assert SaleEntry.of(sale.data()) == sale
    assert "stock" not in sale.reported() and "recovered" not in sale.reported()
    refunded = SaleEntry(slot="A1", product="milk", price=25)
    assert "stock" not in refunded.data(), "a machine-only field that is not set is not journaled"
    denial = DeniedEntry(reason="lunch_lockout", slot="C1", product="crackers", price=15, detail={"window": "x"})
    assert DeniedEntry.of(denial.data()) == denial and "detail" not in denial.reported()


def plain_reporter() -> MqttReporter:
    """A reporter for machine M-1 with no stock and no totals: only what a journal entry makes of it."""
    return MqttReporter(
        machine="M-1",
        zone=ZoneInfo("Asia/Taipei"),
        currency="TWD",
        stock=dict,
        daily_totals=lambda day: [],
        low_stock=2,
    )


def test_the_reporter_sends_exactly_the_view_s_columns(tmp_path):
    """A sale and a denial through the real reporter: the payload is the machine plus the view's columns."""
    reporter = plain_reporter()
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    sale = SaleEntry(slot="A1", product="milk", price=25, stock=5, capacity=8)
    denial = DeniedEntry(reason="guardian_limit", slot="A1", product="milk", pseudonym="p", profile="student")
    sent = reporter.messages_for(JournalEntry("vend_completed", at, "t1", sale.data()))
    sent += reporter.messages_for(JournalEntry("denied", at, "t2", denial.data()))
    by_kind = {message.topic.rsplit("/", 1)[1]: message.payload for message in sent}
    for view in REPORT_VIEWS[:2]:
        assert set(by_kind[view.kind]) == {"machine"} | {name for name, _ in view.columns()}
    assert by_kind["denial"]["pseudonym"] is None, "a family or money reason names no visit"


def test_the_sqlite_views_are_created_and_typed_from_the_same_definition():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE reports (machine TEXT, seq INTEGER, kind TEXT, payload TEXT)")
    db.executescript(view_sql("sqlite"))
    db.execute(
        "INSERT INTO reports VALUES ('M', 1, 'sale', ?)",
        ('{"txn": "t", "time": "09:00", "slot": "A1", "product": "milk", "price": 25, "outcome": "vended"}',),
    )
    assert db.execute("SELECT txn, slot, price, outcome FROM sales").fetchall() == [("t", "A1", 25, "vended")]
    assert "(payload->>'price')::int AS price" in view_sql("postgres")


def test_an_allergen_refusal_reaches_the_vendor_without_the_visit_or_the_allergen():
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    detail = {"allergen": "peanut"}  # what the refusing rule said: the machine's own journal keeps it
    denial = DeniedEntry(reason="allergen_blocked", slot="C2", product="nuts", pseudonym="p", profile="student")
    (sent,) = plain_reporter().messages_for(JournalEntry("denied", at, "t3", replace(denial, detail=detail).data()))
    assert (sent.payload["pseudonym"], sent.payload["profile"]) == (None, None)
    assert "peanut" not in str(sent.payload), "a child's allergy is the family's business"
