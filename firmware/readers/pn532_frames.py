"""PN532 host-interface frames (HSU): pure bytes <-> frames, no I/O.

Normal: ``00 00 FF LEN LCS TFI PD0..PDn DCS 00`` with LEN+LCS = 0 and TFI+PD+DCS = 0 (mod 256);
extended: ``00 00 FF FF FF LENM LENL LCS TFI ... DCS 00``; ACK ``00 00 FF 00 FF 00``;
NACK ``00 00 FF FF 00 00``; error ``00 00 FF 01 FF 7F 81 00``. TFI D4 host->chip, D5 chip->host.
(PN532 User Manual UM0701-02 section 6.2; nfcpy pn53x.py; libnfc pn532_uart.c.)
"""

from __future__ import annotations

from dataclasses import dataclass

START = b"\x00\xff"
HOST, CHIP = 0xD4, 0xD5


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nack:
    pass


@dataclass(frozen=True)
class ErrorFrame:
    """Application-level error (syntax error in the last command)."""


@dataclass(frozen=True)
class Info:
    """An information frame: TFI (D4/D5), then command code and data."""

    tfi: int
    data: bytes

    @property
    def command(self) -> int:
        return self.data[0]

    @property
    def params(self) -> bytes:
        return self.data[1:]


@dataclass(frozen=True)
class Corrupt:
    """A frame whose length or data checksum is wrong: the receiver NACKs and the sender repeats."""

    reason: str


Frame = Ack | Nack | ErrorFrame | Info | Corrupt


def decode(buffer: bytes) -> tuple[int, Frame | None]:
    """(bytes consumed, frame). ``(0, None)``: wait for more; ``(n, None)``: n bytes of noise skipped.

    The preamble ``00`` before the start code ``00 FF`` is optional on the wire and belongs to the frame.
    """
    found = buffer.find(START)
    if found < 0:  # keep a trailing 00: it may be the start of 00 FF
        keep = 1 if buffer.endswith(b"\x00") else 0
        return len(buffer) - keep, None
    begin = found - 1 if found >= 1 and buffer[found - 1] == 0 else found
    if begin > 0:
        return begin, None
    o = found + 2  # first byte after the start code
    if len(buffer) < o + 2:
        return 0, None
    length, check = buffer[o], buffer[o + 1]
    if (length, check) == (0x00, 0xFF):
        return _fixed(buffer, o + 3, Ack())
    if (length, check) == (0xFF, 0x00):
        return _fixed(buffer, o + 3, Nack())
    if (length, check) == (0xFF, 0xFF):
        return _extended(buffer, o)
    if (length + check) & 0xFF:
        return o, Corrupt("length checksum mismatch")
    return _body(buffer, o + 2, length)


def _fixed(buffer: bytes, size: int, frame: Frame) -> tuple[int, Frame | None]:
    if len(buffer) < size:
        return 0, None
    return size, frame


def _extended(buffer: bytes, o: int) -> tuple[int, Frame | None]:
    if len(buffer) < o + 5:
        return 0, None
    lenm, lenl, lcs = buffer[o + 2], buffer[o + 3], buffer[o + 4]
    if (lenm + lenl + lcs) & 0xFF:
        return o, Corrupt("extended length checksum mismatch")
    return _body(buffer, o + 5, (lenm << 8) | lenl)


def _body(buffer: bytes, offset: int, length: int) -> tuple[int, Frame | None]:
    end = offset + length + 2  # data, DCS, postamble
    if len(buffer) < end:
        return 0, None
    body = buffer[offset : offset + length]
    dcs = buffer[offset + length]
    if length == 0 or (sum(body) + dcs) & 0xFF:
        return end, Corrupt("data checksum mismatch")
    if length == 1 and body[0] == 0x7F:
        return end, ErrorFrame()
    return end, Info(body[0], bytes(body[1:]))


def encode(frame: Frame) -> bytes:
    if isinstance(frame, Ack):
        return bytes.fromhex("0000FF00FF00")
    if isinstance(frame, Nack):
        return bytes.fromhex("0000FFFF0000")
    if isinstance(frame, ErrorFrame):
        return bytes.fromhex("0000FF01FF7F8100")
    if isinstance(frame, Info):
        body = bytes([frame.tfi]) + frame.data
        dcs = (-sum(body)) & 0xFF
        if len(body) > 255:
            lenm, lenl = len(body) >> 8, len(body) & 0xFF
            head = b"\x00\x00\xff\xff\xff" + bytes([lenm, lenl, (-(lenm + lenl)) & 0xFF])
        else:
            head = b"\x00\x00\xff" + bytes([len(body), (-len(body)) & 0xFF])
        return head + body + bytes([dcs, 0])
    raise ValueError(f"cannot encode {frame!r}")


def command(code: int, params: bytes = b"") -> Info:
    return Info(HOST, bytes([code]) + params)


def response(code: int, params: bytes = b"") -> Info:
    return Info(CHIP, bytes([code + 1]) + params)
