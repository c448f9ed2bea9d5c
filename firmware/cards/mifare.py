"""MIFARE Classic 1K memory as NXP's data sheet (MF1S50yyX) lays it out: blocks, trailers, value blocks, access bits.

Pure functions over bytes, shared by the machine's driver (which builds and checks what it writes)
and the card emulator (which enforces what a real card enforces). Sources and what is unconfirmed:
``../shared/cards.md``; the data-sheet pages are cited per function.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BLOCK = 16
BLOCKS = 64  # 16 sectors x 4 blocks
SECTORS = 16
MEMORY = BLOCK * BLOCKS  # 1,024 bytes: the .mfd image libnfc and every MIFARE tool read and write
KEY = 6
TRANSPORT_KEY = b"\xff" * KEY
TRANSPORT_ACCESS = bytes.fromhex("FF078069")  # blocks 000, trailer 001; byte 9 as libnfc writes it
# command bytes on the RF interface (libnfc utils/mifare.h)
AUTH_A, AUTH_B, READ, WRITE, DECREMENT, INCREMENT, RESTORE, TRANSFER = 0x60, 0x61, 0x30, 0xA0, 0xC0, 0xC1, 0xC2, 0xB0
VALUE_MIN, VALUE_MAX = -(2**31), 2**31 - 1


class FormatError(ValueError):
    """Bytes that are not what the data sheet says such a block holds."""


def sector_of(block: int) -> int:
    return block // 4


def trailer_of(sector: int) -> int:
    return sector * 4 + 3


def is_trailer(block: int) -> bool:
    return block % 4 == 3


def encode_value(value: int, address: int) -> bytes:
    """A value block (DS p.10): value, ~value, value (signed 32-bit little-endian), then adr ~adr adr ~adr."""
    if not VALUE_MIN <= value <= VALUE_MAX:
        raise FormatError(f"value {value} does not fit a signed 32-bit value block")
    raw = struct.pack("<i", value)
    inverted = bytes(b ^ 0xFF for b in raw)
    return raw + inverted + raw + bytes([address, address ^ 0xFF, address, address ^ 0xFF])


def decode_value(block: bytes) -> tuple[int, int]:
    """(value, address) of a well-formed value block; ``FormatError`` when its copies disagree."""
    if len(block) != BLOCK:
        raise FormatError(f"a value block is {BLOCK} bytes, not {len(block)}")
    raw, inverted, again = block[0:4], block[4:8], block[8:12]
    adr = block[12:16]
    if raw != again or bytes(b ^ 0xFF for b in raw) != inverted:
        raise FormatError("not a value block: its value copies disagree")
    if adr[0] != adr[2] or adr[1] != adr[3] or adr[0] ^ 0xFF != adr[1]:
        raise FormatError("not a value block: its address bytes disagree")
    return struct.unpack("<i", raw)[0], adr[0]


@dataclass(frozen=True)
class Access:
    """C1 C2 C3 of each block of a sector (index 0..2 data blocks, 3 the trailer), as DS fig. 10 stores them."""

    bits: tuple[tuple[int, int, int], ...]

    def encode(self) -> bytes:
        """Bytes 6-8 of the trailer: each bit once plain and once inverted."""
        c1 = sum(self.bits[n][0] << n for n in range(4))
        c2 = sum(self.bits[n][1] << n for n in range(4))
        c3 = sum(self.bits[n][2] << n for n in range(4))
        byte6 = ((~c2 & 0xF) << 4) | (~c1 & 0xF)
        byte7 = (c1 << 4) | (~c3 & 0xF)
        byte8 = (c3 << 4) | c2
        return bytes([byte6, byte7, byte8])

    @classmethod
    def decode(cls, raw: bytes) -> Access:
        """From trailer bytes 6-8; ``FormatError`` when the inverted copies do not match (DS p.12: a blocked sector)."""
        byte6, byte7, byte8 = raw[0], raw[1], raw[2]
        c1, c2, c3 = byte7 >> 4, byte8 & 0xF, byte8 >> 4
        if (byte6 & 0xF) != (~c1 & 0xF) or (byte6 >> 4) != (~c2 & 0xF) or (byte7 & 0xF) != (~c3 & 0xF):
            raise FormatError("access bits and their inverted copies disagree")
        return cls(tuple(((c1 >> n) & 1, (c2 >> n) & 1, (c3 >> n) & 1) for n in range(4)))

    def of(self, index: int) -> tuple[int, int, int]:
        return self.bits[index]


# Data blocks (DS p.14, table 8): C1C2C3 -> keys allowed for read, write, increment, decrement/transfer/restore
AB, B, NEVER = "AB", "B", ""
DATA_RULES: dict[tuple[int, int, int], tuple[str, str, str, str]] = {
    (0, 0, 0): (AB, AB, AB, AB),
    (0, 1, 0): (AB, NEVER, NEVER, NEVER),
    (1, 0, 0): (AB, B, NEVER, NEVER),
    (1, 1, 0): (AB, B, B, AB),
    (0, 0, 1): (AB, NEVER, NEVER, AB),
    (0, 1, 1): (B, B, NEVER, NEVER),
    (1, 0, 1): (B, NEVER, NEVER, NEVER),
    (1, 1, 1): (NEVER, NEVER, NEVER, NEVER),
}
# Sector trailer (DS p.13, table 7): C1C2C3 -> who may write key A, read and write the access bits,
# read and write key B
TRAILER_RULES: dict[tuple[int, int, int], tuple[str, str, str, str, str]] = {
    (0, 0, 0): ("A", "A", NEVER, "A", "A"),
    (0, 1, 0): (NEVER, "A", NEVER, "A", NEVER),
    (1, 0, 0): (B, "AB", NEVER, NEVER, B),
    (1, 1, 0): (NEVER, "AB", NEVER, NEVER, NEVER),
    (0, 0, 1): ("A", "A", "A", "A", "A"),
    (0, 1, 1): (B, "AB", B, NEVER, B),
    (1, 0, 1): (NEVER, "AB", B, NEVER, NEVER),
    (1, 1, 1): (NEVER, "AB", NEVER, NEVER, NEVER),
}
VALUE_SECTOR = Access(((1, 1, 0), (1, 1, 0), (1, 1, 0), (0, 1, 1)))  # debit with A, credit with B; keys by B
TRANSPORT = Access(((0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 1)))


def trailer(key_a: bytes, access: Access, key_b: bytes, user: int = 0x69) -> bytes:
    if len(key_a) != KEY or len(key_b) != KEY:
        raise FormatError("a MIFARE key is 6 bytes")
    return key_a + access.encode() + bytes([user]) + key_b


def key_b_readable(access: Access) -> bool:
    """Key B readable means it cannot authenticate (DS p.14 note 1): 'AB' rights then mean key A only."""
    return "A" in TRAILER_RULES[access.of(3)][3]
