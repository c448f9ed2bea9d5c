"""The typed decoders made from docs/asyncapi.yaml never accept what the contract (jsonschema 2020-12) refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.reporting import codec
from firmware.reporting.batches import BATCHABLE_KINDS
from firmware.reporting.wire import WireError, parse_as
from simulator.backends.contract import check, validator
from tests.simulator.backends.test_contract_fast_path import HEARTBEAT, SALE, VALUES, edited

DENIAL = {
    "machine": "TPE-DAAN-JH-01",
    "seq": 6,
    "txn": "TPE-DAAN-JH-01-0123456789abcdef",
    "time": "2026-03-02T11:15+08:00",
    "reason": "lunch_lockout",
    "slot": "C1",
    "product": None,
    "pseudonym": None,
    "profile": "student",
}
STOCK = {
    "machine": "TPE-DAAN-JH-01",
    "seq": 7,
    "time": "2026-03-02T08:00+08:00",
    "location": "by the library",
    "slots": {
        "A1": {
            "product": "milk-lowfat-290",
            "name": {"zh-TW": "低脂鮮乳", "en": "Low-fat milk"},
            "stock": 3,
            "capacity": 10,
            "price": 25,
            "enabled": True,
            "sellable": True,
        }
    },
}
EXAMPLES = {"sale": SALE, "denial": DENIAL, "stock": STOCK, "heartbeat": HEARTBEAT}


def accepted_by_contract(kind: str, payload: Any) -> bool:
    return not list(validator(kind).iter_errors(payload))


def test_every_kind_a_batch_carries_and_the_batch_itself_decode_typed():
    for kind in (*BATCHABLE_KINDS, "batch", "batch-manifest", "signed", "ack", "status", "heartbeat"):
        assert codec.decoder(kind) is not None, f"{kind}: its schema is not translated; it would take the slow path"


def test_the_manifest_lists_the_kinds_that_travel_in_a_batch():
    listed = codec.schemas()["batch-manifest"]["properties"]["reports"]["items"]["properties"]["kind"]["enum"]
    assert set(listed) == BATCHABLE_KINDS  # a typed manifest vouches for its kinds only if the two agree


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_valid_reports_come_back_checked_and_equal_to_what_json_reads(kind: str):
    text = json.dumps(EXAMPLES[kind], ensure_ascii=False)
    assert accepted_by_contract(kind, EXAMPLES[kind])
    payload = parse_as(kind, text, 64 * 1024)
    assert isinstance(payload, codec.CheckedPayload) and payload.kind == kind
    assert payload == json.loads(text)
    check(kind, "TPE-DAAN-JH-01", payload)  # the machine named is still compared with the topic's


def test_what_the_typed_decoder_refuses_still_gets_the_contracts_message():
    text = json.dumps({**SALE, "price": -1})
    assert codec.decode_checked("sale", text) is None
    payload = parse_as("sale", text, 64 * 1024)
    assert not isinstance(payload, codec.CheckedPayload)
    with pytest.raises(ValueError, match="contract at price"):
        check("sale", "TPE-DAAN-JH-01", payload)


def test_a_checked_payload_of_another_kind_is_checked_again():
    payload = codec.decode_checked("heartbeat", json.dumps(HEARTBEAT))
    assert payload is not None
    with pytest.raises(ValueError, match="does not match the contract"):
        check("sale", "TPE-DAAN-JH-01", payload)


@pytest.mark.parametrize(
    "raw", [b'{"a": NaN}', b'{"seq": 1e999}', b'{"a": "\\ud800"}', b"[" * 40 + b"]" * 40, b"\xff{}", b"[]"]
)
def test_hostile_bytes_are_refused_with_a_reason_on_the_typed_path_too(raw: bytes):
    with pytest.raises(WireError):
        parse_as("sale", raw, 64 * 1024)


def test_a_message_over_the_limit_is_refused_before_it_is_decoded():
    with pytest.raises(WireError, match="larger than"):
        parse_as("sale", json.dumps(SALE).encode(), 100)


@settings(max_examples=600, deadline=None)
@given(
    base=st.sampled_from(sorted(EXAMPLES.items())),
    edits=st.lists(
        st.tuples(st.sampled_from([*SALE, *DENIAL, *STOCK, *HEARTBEAT, "extra"]), VALUES, st.booleans()), max_size=3
    ),
)
def test_what_the_typed_decoder_accepts_the_contract_accepts(base, edits):
    kind, original = base
    payload = edited(original, edits)
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return  # not JSON at all
    if codec.decode_checked(kind, text) is None:
        return  # refused fast; the slow path asks jsonschema, whose answer counts
    errors = list(validator(kind).iter_errors(payload))
    assert not errors, f"typed decoder accepted what the contract refuses: {errors[0].message}"
