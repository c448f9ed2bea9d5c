"""A MIFARE Classic 1K card as the PN532 meets it: keys, access bits, value blocks and the transfer buffer.

The card enforces what the data sheet (MF1S50yyX) says a real card enforces: a sector answers only
after an authentication with one of its keys (the Crypto1 cipher itself runs between the PN532 and
the card and never reaches the host, so it is not modelled), every operation is checked against the
sector's access bits, key A reads back as zeros, a trailer whose access bits do not match their
inverted copies is refused, and DECREMENT, INCREMENT and RESTORE only fill the volatile transfer
buffer: nothing is stored until TRANSFER. A wrong key or a refused operation leaves the card mute
until it is selected again, as a real card halts. ``exchange`` answers one InDataExchange payload
with the bytes after the status byte, or None when the card says nothing (a NAK or silence).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from firmware.cards import mifare as m
from firmware.cards.purse import blank_image, image_uid

WRITES = (m.WRITE, m.TRANSFER)  # the commands that change the card's memory (a tear counts these)


@dataclass
class ClassicCard:
    """One card's memory (an .mfd image) and its session state."""

    image: bytearray
    authenticated: tuple[int, str] | None = None  # (sector, "A" or "B")
    transfer_buffer: int | None = None
    halted: bool = False
    writes: int = 0  # write-class commands carried out since the card entered the field
    tear_after: int | None = None  # leave the field after this many writes (the emulator's ``fault tear N``)
    torn: bool = field(default=False)

    @classmethod
    def blank(cls, uid: bytes) -> ClassicCard:
        return cls(blank_image(uid))

    @property
    def uid(self) -> bytes:
        return image_uid(self.image)

    def select(self) -> None:
        """Selected again (InListPassiveTarget): a new session, no sector open, the transfer buffer gone."""
        self.authenticated, self.transfer_buffer, self.halted = None, None, False

    def read_block(self, number: int) -> bytes:
        return bytes(self.image[number * m.BLOCK : (number + 1) * m.BLOCK])

    # ---- one command ----------------------------------------------------------------------------
    def exchange(self, data: bytes) -> bytes | None:
        if self.halted or self.torn or not data:
            return None
        command = data[0]
        handler = {
            m.AUTH_A: self._auth,
            m.AUTH_B: self._auth,
            m.READ: self._read,
            m.WRITE: self._write,
            m.DECREMENT: self._value,
            m.INCREMENT: self._value,
            m.RESTORE: self._value,
            m.TRANSFER: self._transfer,
        }.get(command)
        answer = handler(data) if handler is not None and len(data) >= 2 and data[1] < m.BLOCKS else None
        if answer is None:
            self.halted, self.authenticated = True, None  # a NAK: the card stops answering until selected
            return None
        if command in WRITES:
            self.writes += 1
            if self.tear_after is not None and self.writes >= self.tear_after:
                self.torn = True  # the card leaves the field right after this write
        return answer

    def _access(self, sector: int) -> m.Access | None:
        try:
            return m.Access.decode(self.read_block(m.trailer_of(sector))[6:9])
        except m.FormatError:
            return None  # a blocked sector answers nothing

    def _allowed(self, number: int, right: int) -> bool:
        """Whether the open session may do ``right`` (0 read, 1 write, 2 increment, 3 decrement) on ``number``."""
        sector = m.sector_of(number)
        if self.authenticated is None or self.authenticated[0] != sector:
            return False
        access = self._access(sector)
        if access is None:
            return False
        keys = m.DATA_RULES[access.of(number % 4)][right]
        if m.key_b_readable(access) and keys == m.AB:
            keys = "A"  # key B is data then, and cannot authenticate: 'A|B' means key A
        return self.authenticated[1] in keys

    def _auth(self, data: bytes) -> bytes | None:
        """60/61, block, key[6], the uid's last 4 bytes: the key must be the sector's A or B (and usable)."""
        if len(data) != 12:
            return None
        number, key, uid = data[1], data[2:8], data[8:12]
        sector = m.sector_of(number)
        kind = "A" if data[0] == m.AUTH_A else "B"
        stored = self.read_block(m.trailer_of(sector))
        access = self._access(sector)
        if access is None or uid != self.uid[-4:]:
            return None
        expected = stored[0:6] if kind == "A" else stored[10:16]
        if kind == "B" and m.key_b_readable(access):
            return None
        if key != expected:
            return None
        self.authenticated, self.transfer_buffer = (sector, kind), None
        return b""

    def _read(self, data: bytes) -> bytes | None:
        number = data[1]
        if m.is_trailer(number):
            return self._read_trailer(number)
        if number == 0 and self.authenticated is not None and self.authenticated[0] == 0:
            return self.read_block(0)  # the manufacturer block reads whatever the access bits say
        return self.read_block(number) if self._allowed(number, 0) else None

    def _read_trailer(self, number: int) -> bytes | None:
        sector = m.sector_of(number)
        access = self._access(sector)
        if self.authenticated is None or self.authenticated[0] != sector or access is None:
            return None
        rules = m.TRAILER_RULES[access.of(3)]
        kind = self.authenticated[1]
        stored = self.read_block(number)
        bits = stored[6:10] if kind in rules[1] else bytes(4)
        key_b = stored[10:16] if kind in rules[3] else bytes(6)
        return bytes(6) + bits + key_b  # key A always reads as zeros

    def _write(self, data: bytes) -> bytes | None:
        if len(data) != 2 + m.BLOCK:
            return None
        number, payload = data[1], data[2:]
        if number == 0:
            return None  # the manufacturer block is read-only
        if m.is_trailer(number):
            return self._write_trailer(number, payload)
        if not self._allowed(number, 1):
            return None
        self.image[number * m.BLOCK : (number + 1) * m.BLOCK] = payload
        return b""

    def _write_trailer(self, number: int, payload: bytes) -> bytes | None:
        sector = m.sector_of(number)
        access = self._access(sector)
        if self.authenticated is None or self.authenticated[0] != sector or access is None:
            return None
        try:
            m.Access.decode(payload[6:9])
        except m.FormatError:
            return None  # a trailer that would block the sector for good is refused
        rules, kind = m.TRAILER_RULES[access.of(3)], self.authenticated[1]
        if kind not in rules[0] or kind not in rules[2] or kind not in rules[4]:
            return None  # the whole trailer is written at once here: every part must be writable
        self.image[number * m.BLOCK : (number + 1) * m.BLOCK] = payload
        return b""

    def _value(self, data: bytes) -> bytes | None:
        """DECREMENT, INCREMENT, RESTORE: source block (+ operand) into the transfer buffer; nothing stored."""
        number = data[1]
        right = {m.DECREMENT: 3, m.INCREMENT: 2, m.RESTORE: 3}[data[0]]
        if m.is_trailer(number) or not self._allowed(number, right):
            return None
        try:
            value, _ = m.decode_value(self.read_block(number))
        except m.FormatError:
            return None  # not a value block: NAK (EV1 DS section 12.4)
        if data[0] == m.RESTORE:
            self.transfer_buffer = value
            return b""
        if len(data) != 6:
            return None
        operand = struct.unpack("<I", data[2:6])[0] & 0x7FFFFFFF  # the sign bit is ignored
        result = value - operand if data[0] == m.DECREMENT else value + operand
        if not m.VALUE_MIN <= result <= m.VALUE_MAX:
            return None
        self.transfer_buffer = result
        return b""

    def _transfer(self, data: bytes) -> bytes | None:
        """TRANSFER: the buffer into a value block the session may decrement; its address byte stays."""
        number = data[1]
        if self.transfer_buffer is None or m.is_trailer(number) or not self._allowed(number, 3):
            return None
        try:
            _, address = m.decode_value(self.read_block(number))
        except m.FormatError:
            address = number
        self.image[number * m.BLOCK : (number + 1) * m.BLOCK] = m.encode_value(self.transfer_buffer, address)
        return b""
