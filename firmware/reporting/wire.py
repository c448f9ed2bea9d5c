"""Inbound messages are hostile until checked: size, encoding, nesting and shape, before anything acts.

Every process that reads the broker (the machine's commands and acks, the backends' reports) parses
through here, so 20 MB of junk, 2,000 ``[``, invalid UTF-8, ``NaN`` or a seq SQLite cannot hold are
refused with a reason instead of raising somewhere deep inside a handler or a transaction.
"""

from __future__ import annotations

import json
import re
from typing import Any

from firmware.errors import VendingError

MAX_DEPTH = 16  # the deepest legitimate message (a set_lockout) nests 4 levels
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER; a larger seq cannot be stored or compared in SQL
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
# a whole string (with its escapes; an unterminated one runs to the end) or one bracket
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|$)|[\[\]{}]', re.DOTALL)


class WireError(VendingError):
    """A message that must be dropped or refused; the text says why (never the payload itself)."""


def nesting_depth(raw: bytes) -> int:
    """How deeply JSON arrays and objects nest in ``raw`` (brackets inside strings do not count).

    One regular-expression match per string or bracket, not a Python step per byte: a 64 KiB batch is
    a few hundred report strings.
    """
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets <= 1:  # most messages: one object, nothing to scan
        return brackets
    depth = deepest = 0
    for token in _TOKENS.finditer(raw):
        byte = token.group()[0]
        if byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_object(raw: bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """One JSON object from the wire, or ``WireError`` naming what is wrong with it."""
    if len(raw) > max_bytes:
        raise WireError(f"payload is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"payload is not JSON: not valid UTF-8 at byte {exc.start}") from None
    if nesting_depth(raw) > max_depth:
        raise WireError(f"payload nests deeper than {max_depth} levels")
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("payload must be a JSON object")
    if b"\\u" in raw:  # the bytes were valid UTF-8, so only a \u escape can make a lone surrogate
        try:  # "\ud800" parses, then fails wherever the text is stored or sent: refuse it here
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise WireError("payload is not JSON: a string holds a lone surrogate (not Unicode text)") from None
    return body


def sequence(value: object, minimum: int = 0) -> int:
    """A stream sequence number: an integer (not a bool) from ``minimum`` up to what SQLite can store."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_SEQ:
        raise WireError(f"seq must be an integer from {minimum} to {MAX_SEQ}")
    return value
