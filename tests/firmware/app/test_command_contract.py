"""docs/asyncapi.yaml states every limit the machine enforces on a command's shape, and no other.

Commands are generated from the published schemas (``instances``, below, reads the keywords the
schemas use; an unknown keyword fails the test rather than being ignored): every one the schema
accepts, the machine's validation accepts; then each is mutated (a field dropped, added, replaced by
any JSON value, a list or map emptied or overfilled) and the schema and the machine must still give
the same verdict. The one rule JSON Schema cannot state ('from' before 'to' in a lockout) is in the
schema's description and checked on its own below.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from firmware.app.command_set import COMMAND_SET
from firmware.config.machine import parse_hhmm
from tests.conftest import ROOT

SPEC = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())
COMPONENTS = SPEC["components"]["schemas"]
SCHEMA_OF = {"restock": "cmd-restock", "set_price": "cmd-set_price", "enable_slot": "cmd-slot"}
SCHEMA_OF |= {"disable_slot": "cmd-slot", "set_lockout": "cmd-set_lockout", "refund": "cmd-refund"}
SCHEMAS = {spec.name: spec.body for spec in COMMAND_SET}  # the machine's one declaration of each command


def test_every_declared_command_has_its_published_schema_and_no_other():
    assert set(SCHEMA_OF) == set(SCHEMAS), "a command declared in command_set.py without a schema, or the reverse"
    assert all(schema in COMPONENTS for schema in SCHEMA_OF.values())


def resolved(node: Any) -> Any:
    """The schema with its #/components/schemas references inlined (hypothesis-jsonschema needs one document)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = COMPONENTS[node["$ref"].rsplit("/", 1)[1]]
            return resolved({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        return {key: resolved(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(value) for value in node]
    return node


HANDLED = {"type", "properties", "required", "additionalProperties", "minProperties", "pattern", "minLength"}
HANDLED |= {
    "maxLength",
    "minimum",
    "maximum",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "format",
    "description",
    "default",
}


def instances(schema: dict) -> st.SearchStrategy[Any]:
    """Values the schema accepts, drawn from its own keywords."""
    unknown = set(schema) - HANDLED
    assert not unknown, f"the generator does not know {unknown}: teach it, or the test proves less than it says"
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "string":
        if schema.get("format") == "date-time":
            zones = st.sampled_from(["Z", "+08:00", "-05:30", "+00:00"])
            moments = st.datetimes(timezones=st.none()).map(lambda d: d.replace(microsecond=0).isoformat())
            return st.builds(lambda moment, zone: moment + zone, moments, zones).filter(lambda t: t[:4] != "0000")
        low, high = schema.get("minLength", 0), schema.get("maxLength", 80)
        text = st.from_regex(schema["pattern"], fullmatch=True) if "pattern" in schema else st.text(max_size=high)
        return text.filter(lambda t: low <= len(t) <= high)
    if kind == "array":
        return st.lists(
            instances(schema["items"]), min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 4)
        )
    if kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if not properties:  # a map: keys free, values by additionalProperties
            return st.dictionaries(
                st.text(max_size=8), instances(extra), min_size=schema.get("minProperties", 0), max_size=4
            )
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {key: instances(value) for key, value in properties.items() if key in required},
            optional={key: instances(value) for key, value in properties.items() if key not in required},
        )
    raise AssertionError(f"the generator does not know type {kind!r}")


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Any:
    """JSON Schema's ``pattern`` as ECMA-262 reads it: ``$`` is the end of the string.

    python-jsonschema uses Python's ``re``, where ``$`` also matches before a final newline, so it
    would accept the id "0\n" that the schema (and the machine) refuse.
    """
    if validator.is_type(instance, "string") and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})


def schema_accepts(schema: dict, instance: Any) -> bool:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return EcmaValidator(schema, format_checker=checker).is_valid(instance)


def machine_accepts(name: str, instance: Any) -> bool:
    """The machine's own shape check, as CommandProcessor._validate runs it."""
    try:
        SCHEMAS[name].model_validate(instance, by_alias=True, by_name=False)
    except ValidationError:
        return False
    return True


def windows_in_order(instance: dict) -> bool:
    """The cross-field rule the schema states in words only."""
    windows = instance.get("lockouts")
    if not isinstance(windows, list):
        return True
    for window in windows:
        try:
            if parse_hhmm(window["from"]) >= parse_hhmm(window["to"]):
                return False
        except (KeyError, TypeError, ValueError):
            continue  # a window the schema refuses anyway
    return True


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False).filter(lambda f: not f.is_integer())
    | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)  # integral floats (10.0) left out: JSON Schema calls them integers, the machine (and the schema's text) does not


@st.composite
def mutated(draw: st.DrawFn, valid: dict) -> dict:
    """A near miss: one change to a valid command, anywhere in it."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(valid, ())
    path = draw(st.sampled_from(paths))
    copy = yaml.safe_load(yaml.safe_dump(valid))  # deep copy of plain JSON data
    parent: Any = copy
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "drop", "add", "long", "many"]))
    if not path:
        return copy if action != "replace" else draw(st.dictionaries(st.text(max_size=10), JSON, max_size=3))
    key = path[-1]
    target = parent[key]
    if action == "replace":
        parent[key] = draw(JSON)
    elif action == "drop":
        del parent[key]
    elif action == "add" and isinstance(target, dict):
        target[draw(st.text(max_size=10))] = draw(JSON)
    elif action == "long" and isinstance(target, str):
        parent[key] = target + draw(st.text(min_size=1, max_size=80))
    elif action == "many" and isinstance(target, list):
        parent[key] = target + target * draw(st.integers(1, 20))
    elif action == "many" and isinstance(target, dict):
        target.clear()
    return copy


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_what_the_schema_accepts_the_machine_accepts_and_so_do_their_refusals(name: str, data: st.DataObject) -> None:
    schema = resolved(COMPONENTS[SCHEMA_OF[name]])
    valid = data.draw(instances(schema), label="valid")
    assume(windows_in_order(valid))
    assert machine_accepts(name, valid), f"the schema accepts, the machine refuses: {valid}"
    near_miss = data.draw(mutated(valid), label="near miss")
    assume(windows_in_order(near_miss))
    assert schema_accepts(schema, near_miss) == machine_accepts(name, near_miss), near_miss


def test_the_limits_the_issue_named_are_stated() -> None:
    """An id with a space, a restock of nothing and 17 lockout windows: refused by both, by the schema's own words."""
    restock, lockout = resolved(COMPONENTS["cmd-restock"]), resolved(COMPONENTS["cmd-set_lockout"])
    base = {
        "id": "cmd-1",
        "machine": "TPE-DAAN-JH-01",
        "command": "restock",
        "issued_at": "2026-03-02T10:00:00+08:00",
        "expires_at": "2026-03-02T10:05:00+08:00",
        "counter": 1,
    }
    window = {"profiles": ["student"], "categories": ["snack"], "from": "11:00", "to": "13:00"}
    cases = [
        ("restock", restock, {**base, "slots": {"A1": 5}}, True),
        ("restock", restock, {**base, "id": "cmd 1", "slots": {"A1": 5}}, False),
        ("restock", restock, {**base, "slots": {}}, False),
        ("set_lockout", lockout, {**base, "command": "set_lockout", "lockouts": [window] * 16}, True),
        ("set_lockout", lockout, {**base, "command": "set_lockout", "lockouts": [window] * 17}, False),
    ]
    for name, schema, instance, expected in cases:
        assert schema_accepts(schema, instance) is expected and machine_accepts(name, instance) is expected, instance
    negative = {**base, "slots": {"A1": -1}}  # the near miss issue 27 names: a restock to a negative level
    assert not schema_accepts(restock, negative) and not machine_accepts("restock", negative)
    newline = {**base, "id": "0\n", "slots": {"A1": 5}}  # '$' ends the string (ECMA-262), not a line
    assert not schema_accepts(restock, newline) and not machine_accepts("restock", newline)
    backwards = {**base, "command": "set_lockout", "lockouts": [{**window, "from": "13:00", "to": "11:00"}]}
    assert schema_accepts(lockout, backwards) and not machine_accepts("set_lockout", backwards)
    assert "'from' must be before 'to'" in str(lockout["properties"]["lockouts"]["items"]["description"])
