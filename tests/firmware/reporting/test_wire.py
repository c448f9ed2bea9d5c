"""The wire checks every inbound message goes through: only a dict or a WireError ever comes out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.reporting.wire import MAX_SEQ, WireError, bracket_depth, parse_object, sequence
from tests.hostile.corpus import HOSTILE


@pytest.mark.parametrize("name,payload", HOSTILE, ids=[name for name, _ in HOSTILE])
def test_every_hostile_payload_parses_to_an_object_or_a_reason(name: str, payload: bytes) -> None:
    try:
        body = parse_object(payload, max_bytes=64 * 1024)
    except WireError as exc:
        assert 0 < len(str(exc)) < 200, "a reason, short, and never the payload itself"
        return
    assert isinstance(body, dict)


def test_twenty_megabytes_are_refused_by_size_before_parsing() -> None:
    with pytest.raises(WireError, match="larger than 4096 bytes"):
        parse_object(b"[" * 20_000_000, max_bytes=4096)


@pytest.mark.parametrize(
    "raw,depth",
    [(b"{}", 1), (b'{"a": [1, {"b": 2}]}', 3), (b'{"a": "[[[[{{{{"}', 1), (b'{"a": "\\"[["}', 1), (b"1", 0)],
)
def test_bracket_depth_ignores_brackets_inside_strings(raw: bytes, depth: int) -> None:
    assert bracket_depth(raw) == depth


def test_junk_thousands_deep_is_refused_from_its_bytes_without_the_parser_recursing(monkeypatch) -> None:
    def never(*_: object, **__: object) -> object:
        raise AssertionError("the parser was called")

    monkeypatch.setattr("firmware.reporting.wire.json.loads", never)
    with pytest.raises(WireError, match="deeper than 16"):
        parse_object(b"[" * 5000, 64 * 1024)


def test_the_depth_limit_is_enforced_at_its_boundary() -> None:
    assert parse_object(b'{"a":' * 15 + b"1" + b"}" * 15, 4096, max_depth=16)
    with pytest.raises(WireError, match="deeper than 16"):
        parse_object(b'{"a":' * 17 + b"1" + b"}" * 17, 4096, max_depth=16)


@pytest.mark.parametrize("value", [-1, MAX_SEQ + 1, 1.0, "1", True, None, [1]])
def test_sequences_outside_what_sqlite_can_hold_or_of_the_wrong_type_are_refused(value: object) -> None:
    with pytest.raises(WireError):
        sequence(value)


def test_sequences_at_the_bounds_are_accepted() -> None:
    assert sequence(0) == 0 and sequence(MAX_SEQ) == MAX_SEQ
    with pytest.raises(WireError):
        sequence(0, minimum=1)


def _depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth_of(v) for v in value), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9', max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_bracket_depth_agrees_with_the_parsed_document(value: object) -> None:
    raw = json.dumps({"v": value}, ensure_ascii=False).encode()
    assert bracket_depth(raw) == 1 + _depth_of(value)
    if 1 + _depth_of(value) > 4:
        with pytest.raises(WireError, match="deeper than 4"):
            parse_object(raw, 4096, max_depth=4)
    else:
        assert parse_object(raw, 4096, max_depth=4) == {"v": value}
