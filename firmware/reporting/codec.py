"""Reports decoded and held to their contract in one pass of C: msgspec types made from docs/asyncapi.yaml.

Parsing a report with ``json.loads``, walking it for depth and then checking it against its JSON
schema cost a receiver three passes of Python per report, most of the time a backlog took to drain.
Here each report kind's schema is translated once into a msgspec type (a ``Struct`` per object with
its required and optional fields, ``Literal`` for an enum, ``Meta`` for a pattern, a bound or a
length), so one decode both parses and checks: a typed value has no room for unknown keys, wrong
types or deeper nesting than its schema.

The translation is only ever a fast *yes*. A schema using a keyword it does not know is not
translated at all (that kind keeps the slow path), and a report the typed decoder refuses goes the
slow path too, where JSON Schema itself has the last word and the message names the field
(``simulator/backends/contract.py``). A property test holds that whatever the typed decoder accepts,
the JSON Schema accepts (``tests/firmware/reporting/test_codec.py``).
"""

from __future__ import annotations

import functools
import keyword
from typing import Annotated, Any, Literal

import msgspec
import yaml

from firmware.config.packaged import contract_file

# the keywords a translated schema may use; any other (oneOf, allOf, ...) leaves its kind untranslated
# rather than translated loosely. ``format`` is an annotation in JSON Schema 2020-12 (the contract's
# validator asserts no format), so it adds nothing to check here either.
KNOWN = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "pattern", "format"}
    | {"minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "$ref", "description"}
)
ENUM_BESIDE = frozenset({"enum", "const", "type", "description"})  # an enum with a pattern too is left alone
BOUNDS = {"minimum": "ge", "maximum": "le", "minLength": "min_length", "maxLength": "max_length"}
ITEM_BOUNDS = {"minItems": "min_length", "maxItems": "max_length"}
SCALARS: dict[str, Any] = {"string": str, "integer": int, "boolean": bool, "null": type(None)}


class CheckedPayload(dict[str, Any]):
    """A report's payload that its kind's typed decoder accepted: its contract need not be checked again."""

    __slots__ = ("kind",)

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.kind = kind


class Untranslatable(Exception):
    """The schema says something the translation does not (it is then checked the slow way)."""


@functools.cache
def schemas() -> dict[str, Any]:
    """The payload schemas of the AsyncAPI document, by name."""
    spec: dict[str, Any] = yaml.safe_load(contract_file().read_text())
    found: dict[str, Any] = spec["components"]["schemas"]
    return found


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        reference = schema["$ref"]
        if not reference.startswith("#/components/schemas/") or len(schema) > 2:
            raise Untranslatable(f"a $ref beside other keywords: {sorted(schema)}")
        schema = schemas()[reference.rsplit("/", 1)[-1]]
    return schema


def _type_of(schema: dict[str, Any], name: str) -> Any:
    """The msgspec type that accepts exactly what ``schema`` accepts, or ``Untranslatable``."""
    schema = _resolve(schema)
    unknown = set(schema) - KNOWN
    if unknown:
        raise Untranslatable(f"{name}: {sorted(unknown)}")
    if "enum" in schema or "const" in schema:
        values = tuple(schema["enum"]) if "enum" in schema else (schema["const"],)
        allowed = schema.get("type", ["string", "null"])
        allowed = allowed if isinstance(allowed, list) else [allowed]
        named = ["null" if value is None else "string" for value in values if value is None or isinstance(value, str)]
        if len(named) != len(values) or not set(named) <= set(allowed) or set(schema) - ENUM_BESIDE:
            raise Untranslatable(f"{name}: an enum of other than strings and null, or with other constraints")
        return Literal[values]
    kinds = schema.get("type")
    if isinstance(kinds, list):
        if len(kinds) != 2 or "null" not in kinds:
            raise Untranslatable(f"{name}: type {kinds}")
        (other,) = (kind for kind in kinds if kind != "null")
        return _type_of({**schema, "type": other}, name) | None
    if kinds in SCALARS:
        bounds = {BOUNDS[key]: schema[key] for key in BOUNDS if key in schema}
        if "pattern" in schema:
            bounds["pattern"] = schema["pattern"]
        base = SCALARS[kinds]
        return Annotated[base, msgspec.Meta(**bounds)] if bounds else base
    if kinds == "array" and "items" in schema:
        bounds = {ITEM_BOUNDS[key]: schema[key] for key in ITEM_BOUNDS if key in schema}
        items = list[_type_of(schema["items"], f"{name}[]")]  # type: ignore[misc,valid-type]
        return Annotated[items, msgspec.Meta(**bounds)] if bounds else items
    if kinds == "object":
        return _object(schema, name)
    raise Untranslatable(f"{name}: type {kinds!r}")


def _object(schema: dict[str, Any], name: str) -> Any:
    extra = schema.get("additionalProperties", True)
    properties: dict[str, Any] = schema.get("properties", {})
    if isinstance(extra, dict) and not properties and "required" not in schema:
        return dict[str, _type_of(extra, f"{name}.*")]  # type: ignore[misc]
    if extra is not False:
        raise Untranslatable(f"{name}: an object open to other keys")
    required = set(schema.get("required", ()))
    if not required <= set(properties):
        raise Untranslatable(f"{name}: a required key with no schema")
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for number, (key, inner) in enumerate(properties.items()):
        field = key if key.isidentifier() and not keyword.iskeyword(key) else f"field_{number}"
        rename[field] = key
        typed = _type_of(inner, f"{name}.{key}")
        fields.append((field, typed) if key in required else (field, typed | msgspec.UnsetType, msgspec.UNSET))
    fields.sort(key=lambda field: len(field) == 3)  # msgspec: fields with defaults after those without
    return msgspec.defstruct(name, fields, forbid_unknown_fields=True, rename=rename)


@functools.cache
def decoder(kind: str) -> msgspec.json.Decoder[Any] | None:
    """The typed decoder of one report kind, or None when its schema cannot be translated exactly."""
    if kind not in schemas():
        return None
    try:
        typed = _type_of(schemas()[kind], kind.title().replace("-", ""))
    except Untranslatable:
        return None
    return msgspec.json.Decoder(typed)


def decode_checked(kind: str, text: bytes | str) -> CheckedPayload | None:
    """The report as its contract's ``CheckedPayload``; None if the fast path cannot say yes (take the slow one)."""
    typed = decoder(kind)
    if typed is None:
        return None
    try:
        value = typed.decode(text)
    except msgspec.MsgspecError:
        return None
    return CheckedPayload(kind, msgspec.to_builtins(value))
