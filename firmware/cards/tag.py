"""MIFARE Classic commands as a reader sends them, over whatever carries one payload to the card.

``exchange`` is the transport: the PN532's InDataExchange (firmware/readers/pn532_commands.py) on a
real or emulated reader, or a card model in a test. It returns the card's answer, or raises
``CardRefused`` (a NAK, a wrong key) or ``CardGone`` (nothing answered: the card left the field).
The byte layouts are libnfc's (``../shared/cards.md`` section 3): AUTH carries the key and then the
uid's last four bytes; DECREMENT and INCREMENT a little-endian operand.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from firmware import crashpoints
from firmware.cards import mifare as m


class CardRefused(Exception):
    """The card (or the PN532 for it) said no: a wrong key, a right the access bits do not give."""


class CardGone(Exception):
    """Nothing answered: the card left the field, perhaps in the middle of a transaction."""


class ClassicTag:
    """One MIFARE Classic card in the field, addressed through ``exchange``."""

    def __init__(self, uid: bytes, exchange: Callable[[bytes], bytes]) -> None:
        self.uid = uid
        self.exchange = exchange

    def authenticate(self, block: int, key: bytes, key_b: bool = False) -> None:
        self.exchange(bytes([m.AUTH_B if key_b else m.AUTH_A, block]) + key + self.uid[-4:])

    def read(self, block: int) -> bytes:
        data = self.exchange(bytes([m.READ, block]))
        if len(data) != m.BLOCK:
            raise CardRefused(f"READ {block}: {len(data)} bytes instead of {m.BLOCK}")
        return data

    def write(self, block: int, data: bytes) -> None:
        self.exchange(bytes([m.WRITE, block]) + data)
        crashpoints.reached("card.after_write")

    def decrement(self, block: int, amount: int) -> None:
        self.exchange(bytes([m.DECREMENT, block]) + struct.pack("<I", amount))

    def increment(self, block: int, amount: int) -> None:
        self.exchange(bytes([m.INCREMENT, block]) + struct.pack("<I", amount))

    def restore(self, block: int) -> None:
        self.exchange(bytes([m.RESTORE, block]))

    def transfer(self, block: int) -> None:
        self.exchange(bytes([m.TRANSFER, block]))
        crashpoints.reached("card.after_write")
