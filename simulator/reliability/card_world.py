"""A purse card that outlives the crash harness's processes: what the card wrote is on it after a power cut.

The card's image is a file (``card.mfd``), rewritten and fsynced after every write-class command
before the reader's driver hears the answer, as a real card's EEPROM holds a write the moment it is
acknowledged. ``VENDING_CARD_TEAR=N`` makes the card leave the field after its N-th write of the
run (a pull, not a power cut): the machine carries on, and the recovery's tap shows what was left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from firmware.cards.purse import CardRecord, Sam, issue_image
from firmware.domain import CardLink, Exchange
from simulator.emulators.mifare_classic import WRITES, ClassicCard
from simulator.safe_output import replace_file
from simulator.scenarios.purses import field_link

TEAR_ENV = "VENDING_CARD_TEAR"
IMAGE = "card.mfd"


def issue_card(directory: Path, uid: str, profile: str, purse: int, school: str, sam: Sam, issued: date) -> None:
    replace_file(directory / IMAGE, issue_image(bytes.fromhex(uid), CardRecord(profile, school, issued), purse, sam))


def card_link(directory: Path, tear: bool = True) -> CardLink:
    """The card on the reader, read from and written through to its file (torn as the environment says)."""
    path = directory / IMAGE
    card = ClassicCard(bytearray(path.read_bytes()))
    armed = os.environ.get(TEAR_ENV) if tear else None
    card.tear_after = int(armed) if armed else None
    inner = field_link(card)

    @contextmanager
    def session() -> Iterator[Exchange]:
        with inner() as exchange:

            def written_through(data: bytes) -> bytes:
                try:
                    return exchange(data)
                finally:
                    if data and data[0] in WRITES:
                        replace_file(path, bytes(card.image))

            yield written_through

    return session


def image(directory: Path) -> bytes:
    return (directory / IMAGE).read_bytes()
