"""The backends' compiled schemas (fastjsonschema) never accept what the contract (jsonschema 2020-12) refuses."""

from __future__ import annotations

import copy
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.backends.contract import check, compiled, schemas, validator

# keywords whose meaning differs between draft 7 (what fastjsonschema compiles) and 2020-12
NOT_IN_DRAFT_7 = {
    "prefixItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "dependentRequired",
    "dependentSchemas",
    "$defs",
    "minContains",
    "maxContains",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
}
VALIDATING = {"type", "enum", "pattern", "minimum", "maximum", "required", "additionalProperties", "properties"}
VALIDATING |= {"items", "minItems", "maxItems", "oneOf", "anyOf", "allOf", "const", "minLength", "maxLength", "not"}

SALE = {
    "machine": "TPE-DAAN-JH-01",
    "seq": 5,
    "txn": "TPE-DAAN-JH-01-0123456789abcdef",
    "time": "2026-03-02T09:00+08:00",
    "slot": "A1",
    "product": "milk-lowfat-290",
    "price": 25,
    "currency": "TWD",
    "outcome": "vended",
    "pseudonym": "abcdefghijklmnopqrstuvwxyz",
    "profile": "student",
}
HEARTBEAT = {"machine": "TPE-DAAN-JH-01", "time": "2026-03-02T09:00:00+08:00", "outbox": 0, "restarts": 0}


def nodes(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += nodes(value)
    elif isinstance(node, list):
        for value in node:
            found += nodes(value)
    return found


def test_the_schemas_use_only_keywords_both_drafts_read_alike():
    for node in nodes(schemas()):
        assert not set(node) & NOT_IN_DRAFT_7, f"a 2020-12-only keyword: {set(node) & NOT_IN_DRAFT_7}"
        if "$ref" in node:  # draft 7 ignores a $ref's siblings, 2020-12 applies them
            assert not set(node) & VALIDATING, f"constraints beside a $ref: {node}"


def test_valid_reports_pass_both_and_refusals_still_name_the_field():
    for kind, payload in (("sale", SALE), ("heartbeat", HEARTBEAT)):
        compiled(kind)(payload)
        check(kind, "TPE-DAAN-JH-01", payload)
    with pytest.raises(ValueError, match="contract at price"):
        check("sale", "TPE-DAAN-JH-01", {**SALE, "price": -1})


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", "A1", "vended", "student", "2026-03-02T09:00+08:00", "TWD", "x" * 70]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def edited(original: dict[str, Any], edits: list[tuple[str, Any, bool]]) -> dict[str, Any]:
    """A copy of ``original`` with each edit applied: a key removed, or set to a value."""
    payload = copy.deepcopy(original)
    for key, value, remove in edits:
        if remove:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from([("sale", SALE), ("heartbeat", HEARTBEAT)]),
    edits=st.lists(st.tuples(st.sampled_from([*SALE, *HEARTBEAT, "extra"]), VALUES, st.booleans()), max_size=3),
)
def test_what_the_compiled_schema_accepts_the_contract_accepts(base, edits):
    kind, original = base
    payload = edited(original, edits)
    try:
        compiled(kind)(payload)
    except fastjsonschema.JsonSchemaException:
        return  # refused fast; check() then asks jsonschema, whose answer counts
    errors = list(validator(kind).iter_errors(payload))
    assert not errors, f"compiled schema accepted what the contract refuses: {errors[0].message}"
