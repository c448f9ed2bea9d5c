"""docs/privacy.md lists exactly the fields each payload schema has (the generated manifest section)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

SCHEMAS = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())["components"]["schemas"]
DOC = (ROOT / "docs/privacy.md").read_text()


def documented_fields() -> dict[str, set[str]]:
    """Heading "#### Party: `kind`" -> the first column of the table under it."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in DOC.splitlines():
        heading = re.match(r"^#### \w+: `([a-z-]+)`", line)
        if heading:
            current = heading.group(1)
            sections[current] = set()
        elif line.startswith("## "):
            current = None
        elif current and (row := re.match(r"^\| ([a-z_]+) \|", line)) and row.group(1) != "field":
            sections[current].add(row.group(1))
    return sections


def fields_of(schema: dict) -> set[str]:
    """A payload's fields: one object's, or every variant's of a ``oneOf``."""
    return set(schema["properties"]) if "properties" in schema else set().union(*map(fields_of, schema["oneOf"]))


def test_every_published_payload_is_documented_field_by_field():
    sections = documented_fields()
    published = {"sale", "denial", "stock", "alert", "cmd-result", "summary", "status", "heartbeat", "settlement"}
    published |= {f"{party}-{direction}" for party in ("vendor", "issuer") for direction in ("request", "answer")}
    published |= {"account", "auth-request", "unresolved"}  # payment modes (docs/payments.md)
    sealed = {"settlement-document", "account-document", "auth-document", "unresolved-document"}  # the issuer's
    published |= {"hotlist", "controls"}  # an authority's push to its machines (the vendor carries it sealed)
    sealed |= {"hotlist-document", "controls-document"}  # what its machines open
    published |= {"guardian-alert", "credit", "credit-given", "credits"}  # sealed to the school, the issuer
    sealed |= {"guardian-alert-document", "credit-document", "credit-given-document", "credits-document"}
    assert set(sections) == published | sealed
    for kind in published | sealed:
        assert sections[kind] == fields_of(SCHEMAS[kind]), f"docs/privacy.md section {kind!r}"


def test_no_vendor_payload_has_a_card_number_or_balance():
    for kind in ("sale", "denial", "stock", "alert", "cmd-result", "summary", "status", "heartbeat"):
        fields = set(SCHEMAS[kind]["properties"])
        assert not fields & {"uid", "card", "balance", "name"}, kind


def test_backend_schemas_in_docs_are_the_ones_the_code_creates():
    from simulator.backends.schemas import ISSUER_SCHEMA, VENDOR_SCHEMA

    doc = (ROOT / "docs/backends.md").read_text()
    assert VENDOR_SCHEMA in doc and ISSUER_SCHEMA in doc
