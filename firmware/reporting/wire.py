"""Inbound messages are hostile until checked: size, encoding, nesting and shape, before anything acts.

Every process that reads the broker (the machine's commands and acks, the backends' reports) parses
through here, so 20 MB of junk, 2,000 ``[``, invalid UTF-8, ``NaN`` or a seq SQLite cannot hold are
refused with a reason instead of raising somewhere deep inside a handler or a transaction.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from firmware.errors import VendingError
from firmware.reporting.codec import decode_checked

MAX_DEPTH = 16  # the deepest legitimate message (a set_lockout) nests 4 levels
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER; a larger seq cannot be stored or compared in SQL


class WireError(VendingError):
    """A message that must be dropped or refused; the text says why (never the payload itself)."""


_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # JSON strings: brackets inside them do not nest
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP = [1 if byte in b"[{" else -1 for byte in range(256)]  # indexed by the bracket's byte


def bracket_depth(raw: bytes) -> int:
    """How deeply brackets outside strings nest in ``raw``, read from the bytes before any parse.

    So junk nested thousands deep is refused without the C parser recursing into it: at that depth
    a garbage collection that runs a finaliser would fail for want of stack, whatever it finalises.
    An unterminated string's brackets count too: such a text is not JSON either way.
    """
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999 parses as infinity, which no JSON can carry back out
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value


def parse_object(raw: bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """One JSON object from the wire, or ``WireError`` naming what is wrong with it."""
    if len(raw) > max_bytes:
        raise WireError(f"payload is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"payload is not JSON: not valid UTF-8 at byte {exc.start}") from None
    if raw.count(b"[") + raw.count(b"{") > max_depth and bracket_depth(raw) > max_depth:  # fewer cannot nest deeper
        raise WireError(f"payload nests deeper than {max_depth} levels")
    try:
        body = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise WireError(f"payload nests deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise WireError(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("payload must be a JSON object")
    if b"\\u" in raw:  # the bytes were valid UTF-8, so only a \u escape can make a lone surrogate
        try:  # "\ud800" parses, then fails wherever the text is stored or sent: refuse it here
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise WireError("payload is not JSON: a string holds a lone surrogate (not Unicode text)") from None
    return body


def parse_as(kind: str, raw: bytes | str, max_bytes: int) -> dict[str, Any]:
    """``parse_object`` for a message of a known kind, through its typed decoder first.

    The typed decoder is one pass of C that also holds the message to its contract (codec.py); the
    checks above run only where it cannot say yes, and name what is wrong.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) <= max_bytes:
        checked = decode_checked(kind, data)
        if checked is not None:
            return checked
    return parse_object(data, max_bytes)


def sequence(value: object, minimum: int = 0) -> int:
    """A stream sequence number: an integer (not a bool) from ``minimum`` up to what SQLite can store."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_SEQ:
        raise WireError(f"seq must be an integer from {minimum} to {MAX_SEQ}")
    return value
