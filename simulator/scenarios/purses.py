"""The cards of a run with stored value on the card: MIFARE images the machine reads and debits itself.

Each card is the emulator's ``ClassicCard`` (simulator/emulators/mifare_classic.py), issued with the
simulation's card master key; a tap hands the machine a link to it, so the controller's purse
adapter reaches it with the same chip commands a PN532 carries. A ``tear`` makes the next tapped card
leave the field after its N-th write (0: at once, before it is read); a ``topup`` is a convenience
store's credit. The money the cards hold (recovered as their next tap would find them) is part of
the run's invariant.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

from firmware.cards.mifare import MEMORY
from firmware.cards.purse import CardRecord, PurseState, Sam, issue_image, topup_image, uid_problem
from firmware.cards.purse_io import recover, step_fate
from firmware.cards.tag import CardGone, CardRefused, ClassicTag
from firmware.domain import CardLink, Exchange
from firmware.errors import VendingError
from firmware.identity.keyset import CARD_MASTER, read_card_master
from firmware.identity.secretfile import write_secret
from firmware.journal.card_steps import CardSteps
from firmware.journal.database import Database
from simulator.emulators.mifare_classic import ClassicCard
from simulator.safe_output import replace_file


def simulation_card_master(state_dir: Path) -> Sam:
    """The secure access module's key for a simulated machine (made once per state dir, like its term key)."""
    path = state_dir / f"{CARD_MASTER}.key"
    if not path.exists():
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_secret(path, secrets.token_bytes(32).hex().encode())
    return Sam(read_card_master(state_dir))


def install_card_master(keys: Path, state_dir: Path) -> None:
    """The issuer's card master key as the machine's SAM (``card-master.key`` in the state dir, 0600)."""
    key = read_card_master(keys)
    target = state_dir / "card-master.key"
    if target.exists() and read_card_master(state_dir) != key:
        raise VendingError(f"{target} holds another issuer's card master key; nothing replaced")
    if not target.exists():
        write_secret(target, key.hex().encode())


def field_link(card: ClassicCard) -> CardLink:
    """How a reader reaches ``card`` while it is in the field: selected, then one command at a time."""

    @contextmanager
    def session() -> Iterator[Exchange]:
        if card.torn:
            raise CardGone("the card has left the field")
        card.select()

        def exchange(data: bytes) -> bytes:
            answer = card.exchange(data)
            if answer is None:
                raise CardGone("the card left the field") if card.torn else CardRefused(f"refused {data[:2].hex()}")
            return answer

        yield exchange

    return session


class PurseCards:
    """The run's purse cards by uid, and what the machine's books still owe or hold for them."""

    def __init__(self, sam: Sam, school: str, issued: date) -> None:
        self.sam = sam
        self.school = school
        self.issued = issued
        self.cards: dict[str, ClassicCard] = {}
        self._tear_next: int | None = None

    def issue(self, uid: str, profile: str, purse: int) -> None:
        raw = bytes.fromhex(uid)
        record = CardRecord(profile, self.school, self.issued)
        self.cards[uid] = ClassicCard(bytearray(issue_image(raw, record, purse, self.sam)))

    def link(self, uid: str) -> CardLink | None:
        """A tap of ``uid``: the card enters the field (an armed tear applies to this tap).

        A card this run did not issue is another issuer's (a blank card to our keys), as at a real reader;
        one no MIFARE Classic 1K can be (``uid_problem``) has no purse to read.
        """
        card = self.cards.get(uid)
        if card is None:
            raw = bytes.fromhex(uid)
            return field_link(ClassicCard.blank(raw)) if uid_problem(raw) is None else None
        card.torn, card.writes, card.tear_after = self._tear_next == 0, 0, self._tear_next
        self._tear_next = None
        return field_link(card)

    def tear_next(self, writes: int) -> None:
        self._tear_next = writes

    def topup(self, uid: str, amount: int, terminal: str, at: datetime) -> None:
        card = self.cards[uid]
        card.image[:] = topup_image(bytes(card.image), amount, self.sam, terminal, at)

    def recovered(self, uid: str) -> PurseState:
        """The card as its next tap would find it, read from a copy (the card itself is untouched)."""
        copy = ClassicCard(bytearray(self.cards[uid].image))
        with field_link(copy)() as exchange:
            return recover(ClassicTag(copy.uid, exchange), self.sam)

    def balance(self, uid: str) -> int:
        return self.recovered(uid).balance

    def save(self, path: Path) -> None:
        """Every card's image in one file (a school's cards between the days of a term)."""
        uids = list(self.cards)
        blob = b"".join(bytes(self.cards[uid].image) for uid in uids)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, json.dumps(uids).encode() + b"\n" + blob)

    def load(self, path: Path) -> bool:
        """The cards ``save`` wrote, if there are any (False: the term's first day, issue them)."""
        if not path.exists():
            return False
        header, _, blob = path.read_bytes().partition(b"\n")
        for n, uid in enumerate(json.loads(header)):
            self.cards[uid] = ClassicCard(bytearray(blob[n * MEMORY : (n + 1) * MEMORY]))
        return True

    def total(self, machines: list[tuple[Database, str]]) -> int:
        """The cards' purses, corrected for steps the machines' books have not caught up with.

        A debit a pulled card shows made is money the machine holds (its books do not count it until
        the card's next tap); a refund a pulled card shows paid is counted by the books as still owed.
        A step the machine left to the issuer is the issuer's to count (``ReportingWorld``).
        ``machines``: each machine's books and id (the cards are shared; each machine's steps its own).
        """
        correction = 0
        for db, machine_id in machines:
            for step in CardSteps(db).all():
                if step.counter is None or step.at is None or step.uid not in self.cards or step.status != "open":
                    continue
                sign = 1 if step.kind == "debit" else -1
                made = step_fate(self.recovered(step.uid), step.counter, sign * step.amount, machine_id, step.at)
                correction += sign * step.amount if made else 0
        return sum(self.balance(uid) for uid in self.cards) + correction
