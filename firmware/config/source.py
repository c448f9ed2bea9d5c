"""YAML read with a line number for every field, and pydantic errors mapped back to those lines.

Validation errors are a user interface: ``vending check`` prints ``FILE:LINE: field.path: reason``
and the tests compare that text verbatim, so the mapping from a pydantic ``loc`` to a line lives here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from firmware.errors import InputError
from firmware.files import FileTooLarge, read_capped

MAX_FILE_BYTES = 1_000_000  # a config or scenario beyond this is a mistake, not a machine

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class Strict(BaseModel):
    """Base for every input schema: unknown keys are errors and YAML or JSON strings never pass as numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


@dataclass
class YamlDoc:
    """Parsed YAML plus where each value came from."""

    source: str
    data: Any
    lines: dict[Loc, int]

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that has one."""
        for cut in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:cut]))
            if line is not None:
                return line
        return None

    def error(self, loc: Loc, reason: str) -> InputError:
        return InputError(self.source, self.line_of(loc), dotted(loc), reason)


def dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def error_text(exc: ValidationError) -> str:
    """Pydantic's first error as one line, ``field.path: reason`` (a document that is not a file)."""
    loc, reason = first_error(exc)
    return f"{dotted(loc)}: {reason}" if loc else reason


class _Constructor(yaml.constructor.SafeConstructor):
    pass


# libyaml's parser when PyYAML has it (same nodes and marks, much faster), the pure one otherwise
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _to_python(node: yaml.Node, loc: Loc, lines: dict[Loc, int], doc: str) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError(doc, key_node.start_mark.line + 1, dotted(loc), "mapping keys must be scalars")
            key = _Constructor().construct_object(key_node)
            if not isinstance(key, str | int):
                key = str(key)
            if key in result:
                raise InputError(doc, key_node.start_mark.line + 1, dotted((*loc, key)), "duplicate key")
            lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, (*loc, key), lines, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, index), lines, doc) for index, item in enumerate(node.value)]
    return _Constructor().construct_object(node)


def listed_twice(entries: Iterable[T]) -> T | None:
    """The first entry a list of a config names a second time, or None: one check for "listed twice".

    A name twice is a slip (the same rule set twice is not stricter food, the same card twice no second
    card), so configs refuse it and say which.
    """
    seen: set[T] = set()
    for entry in entries:
        if entry in seen:
            return entry
        seen.add(entry)
    return None


def read_yaml(path: Path, display_name: str | None = None) -> YamlDoc:
    """Read one YAML document; any problem becomes an ``InputError`` naming the file and line."""
    name = display_name or str(path)
    try:
        raw = read_capped(path, MAX_FILE_BYTES)
    except FileTooLarge as exc:
        raise InputError(name, None, "", f"file is {exc.strerror}") from None
    except OSError as exc:
        raise InputError(name, None, "", f"cannot read file: {exc.strerror or exc}") from None
    return parse_yaml(raw, name)


def _refuse_aliases(text: str, name: str) -> None:
    """No ``*alias`` anywhere: nine levels of ten aliases are 600 bytes that expand to a billion nodes.

    Configs and scenarios have no use for them, so the first alias is an error at its line, found
    from the event stream before anything is built.
    """
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else None
            raise InputError(name, line, "", f"YAML aliases (*{event.anchor}) are not allowed in this file")


def parse_yaml(raw: bytes, name: str) -> YamlDoc:
    """``raw`` (read by ``read_yaml``, which holds it to ``MAX_FILE_BYTES``) as a document with its lines."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(name, line, "", f"not valid UTF-8 (byte 0x{raw[exc.start]:02X})") from None
    try:
        _refuse_aliases(text, name)
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(
            name, mark.line + 1 if mark else None, "", f"YAML syntax error: {exc.problem or exc.context}"
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(name, None, "", f"YAML error: {exc}") from None
    if node is None:
        raise InputError(name, 1, "", "file is empty")
    lines: dict[Loc, int] = {}
    try:
        data = _to_python(node, (), lines, name)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise InputError(name, mark.line + 1 if mark else None, "", f"YAML error: {exc.problem}") from None
    return YamlDoc(name, data, lines)


def _reason(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def first_error(exc: ValidationError) -> tuple[Loc, str]:
    """Pydantic's first error as (location, reason in our words): every input reports one error, the first.

    A misspelt key gives two errors, the right key missing and the wrong one unknown; the unknown one
    is the cause, so it is reported, with the key it was probably meant to be.
    """
    errors = exc.errors(include_url=False)
    for error in errors:
        loc: Loc = tuple(error["loc"])
        if error["type"] != "extra_forbidden" or not loc:
            continue
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]]
        meant = difflib.get_close_matches(str(loc[-1]), missing, n=1)
        if meant:
            return loc, f"unknown key; did you mean {meant[0]!r}?"
    first = errors[0]
    return tuple(first["loc"]), _reason(dict(first))


def validate(model: type[M], doc: YamlDoc, context: dict[str, Any] | None = None) -> M:
    """Validate ``doc`` against ``model``; the first error is raised as an ``InputError``."""
    if not isinstance(doc.data, dict):
        raise doc.error((), f"expected a mapping at the top level, got {type(doc.data).__name__}")
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        loc, reason = first_error(exc)
        raise doc.error(document_loc(doc.data, loc), reason) from None


def document_loc(data: Any, loc: Loc) -> Loc:
    """The path into the document that pydantic's ``loc`` points at.

    Pydantic also puts union and discriminator tags (``limit``, ``function-after[...]``) into
    ``loc``; those are not keys of the YAML and are dropped.
    """
    path: list[str | int] = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict | list):
            if isinstance(part, str) and ("[" in part or not isinstance(node, dict)):
                continue  # a tag, not a key
            if isinstance(node, dict) and part not in node and _is_tag_of(node, part):
                continue
            node = _MISSING  # a missing key: keep it in the path, it is what the error names
        elif node is not _MISSING:
            continue  # a value has no keys: a union's tag (``balance: "abc"`` said ``balance.int``)
        path.append(part)
    return tuple(path)


_MISSING = object()  # below a key the document does not have (``None`` is YAML's null, a value)


def _is_tag_of(node: dict[Any, Any], part: str | int) -> bool:
    return node.get("type") == part or part in {"str", "int", "float", "dict", "list"}
