"""RDM6300 / EM4100 frames: ``02 | 10 ASCII hex | 2 ASCII hex checksum | 03``; pure, no I/O.

The checksum is the XOR of the five bytes the ten data digits encode (python-rdm6300 reader.py).
"""

from __future__ import annotations

from dataclasses import dataclass

STX, ETX, SIZE = 0x02, 0x03, 14
HEX = frozenset(b"0123456789ABCDEFabcdef")


@dataclass(frozen=True)
class Tag:
    uid: str  # the five data bytes, upper-case hex (version byte + 32-bit tag id)


@dataclass(frozen=True)
class Corrupt:
    reason: str


Frame = Tag | Corrupt


def decode(buffer: bytes) -> tuple[int, Frame | None]:
    start = buffer.find(bytes([STX]))
    if start < 0:
        return len(buffer), None
    if start > 0:
        return start, None
    if len(buffer) < SIZE:
        return 0, None
    frame = buffer[:SIZE]
    if frame[13] != ETX or not all(b in HEX for b in frame[1:13]):
        return 1, Corrupt("not an RDM6300 frame")  # skip this STX and resynchronise
    data = bytes.fromhex(frame[1:11].decode())
    checksum = int(frame[11:13].decode(), 16)
    x = 0
    for b in data:
        x ^= b
    if x != checksum:
        return SIZE, Corrupt("checksum mismatch")
    return SIZE, Tag(data.hex().upper())


def encode(frame: Tag) -> bytes:
    data = bytes.fromhex(frame.uid)
    if len(data) != 5:
        raise ValueError("an EM4100 tag is 5 bytes")
    x = 0
    for b in data:
        x ^= b
    return bytes([STX]) + (frame.uid.upper() + f"{x:02X}").encode() + bytes([ETX])
