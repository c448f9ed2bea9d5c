"""Text-line readers: a uid as hex or decimal text and a line end (CR, LF or CRLF); pure, no I/O.

Decimal readers print the 32-bit number of a 4-byte uid, big- or little-endian by vendor: configurable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 64
HEX_UID = re.compile(rb"^(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{14}|[0-9A-Fa-f]{20})$")
DECIMAL = re.compile(rb"^[0-9]{1,10}$")


@dataclass(frozen=True)
class Uid:
    uid: str


@dataclass(frozen=True)
class Corrupt:
    reason: str


Frame = Uid | Corrupt


@dataclass(frozen=True)
class LineFormat:
    digits: str = "hex"  # hex | dec
    endian: str = "be"  # for dec: be | le
    terminator: bytes = b"\r\n"


def decode(buffer: bytes, fmt: LineFormat = LineFormat()) -> tuple[int, Frame | None]:
    match = re.search(rb"\r\n|\r|\n", buffer)
    if match is None:
        if len(buffer) > MAX_LINE:
            return len(buffer), Corrupt("line too long")
        return 0, None
    if match.group() == b"\r" and match.end() == len(buffer):
        return 0, None  # a CR at the very end may be the first half of CRLF
    line = buffer[: match.start()].strip()
    consumed = match.end()
    if not line:
        return consumed, None
    if fmt.digits == "hex":
        if not HEX_UID.fullmatch(line):
            return consumed, Corrupt("not a 4, 7 or 10 byte hex uid")
        return consumed, Uid(line.decode().upper())
    if not DECIMAL.fullmatch(line) or int(line) > 0xFFFFFFFF:
        return consumed, Corrupt("not a 32-bit decimal uid")
    return consumed, Uid(int(line).to_bytes(4, "little" if fmt.endian == "le" else "big").hex().upper())


def encode(frame: Uid, fmt: LineFormat = LineFormat()) -> bytes:
    if fmt.digits == "hex":
        return frame.uid.encode() + fmt.terminator
    value = int.from_bytes(bytes.fromhex(frame.uid), "little" if fmt.endian == "le" else "big")
    return str(value).encode() + fmt.terminator
