"""The authorities' pushes a machine takes between events: lost cards, guardian controls, pending credits.

Each arrives on its own topic (``Inbox.push_topics``), is checked on the loop's thread (seal, signer,
version, expiry: firmware/reporting/pushed.py) and applied in one commit with the journal entry that
records the version applied. A push that fails a check is logged and counted, and changes nothing;
the version held arriving again (a reconnect's redelivery) is no incident. Each kind is declared once
(``Held``): whose it is, where it comes, how it is read and how it is applied.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from firmware.controller.session import Controller
from firmware.identity.signing import TrustStore
from firmware.journal.controls import ControlsBook
from firmware.journal.credits import CreditsBook
from firmware.journal.database import Database
from firmware.journal.held import HeldPush
from firmware.journal.hotlist import HotlistBook, HotlistCheck
from firmware.reporting import controls, credits, hotlist
from firmware.reporting.pushed import AlreadyHeld
from firmware.reporting.signed import Verifier
from firmware.reporting.wire import WireError

log = logging.getLogger(__name__)

Reader = Callable[[bytes, bytes, Verifier, int, datetime], Any]  # raw, key, verify, version held, now -> document


@dataclass(frozen=True)
class Held:
    """One authority's push as a machine takes it: read under ``key``, applied to ``book``."""

    kind: str  # hotlist, controls, credits: the journal entry is ``<kind>_applied``
    party: str  # who alone may sign it
    topics: tuple[str, ...]
    max_bytes: int
    key: bytes
    book: HeldPush
    read: Reader
    apply: Callable[[Any], None]  # the checked document into the book (inside the commit)


def _hotlist(check: HotlistCheck) -> Held:
    book: HotlistBook = check.book

    def apply(document: hotlist.HotlistDocument) -> None:
        if document.kind == "full":
            book.replace(document.version, document.expires, document.entries)
        else:
            book.change(document.version, document.expires, document.add, document.remove)

    topics = (hotlist.FULL_TOPIC, hotlist.DELTA_TOPIC)
    return Held("hotlist", "issuer", topics, hotlist.MAX_HOTLIST_BYTES, check.key, book, hotlist.read, apply)


def _controls(book: ControlsBook, school: str) -> Held:
    def apply(document: controls.ControlsDocument) -> None:
        book.replace(document.version, document.periods, document.cards)

    topics = (controls.topic(school),)
    return Held("controls", "school", topics, controls.MAX_CONTROLS_BYTES, book.key, book, controls.read, apply)


def _credits(book: CreditsBook) -> Held:
    def apply(document: credits.CreditsDocument) -> None:
        book.replace(document.version, document.cards)

    topics = (credits.TOPIC,)
    return Held("credits", "issuer", topics, credits.MAX_CREDITS_BYTES, book.key, book, credits.read, apply)


class Pushes:
    def __init__(self, controller: Controller, db: Database, authorities: TrustStore,
                 hotlist_check: HotlistCheck | None, controls_book: ControlsBook | None,
                 credits_book: CreditsBook | None = None) -> None:  # fmt: skip
        self.controller = controller
        self.db = db
        self.authorities = authorities
        held = [_hotlist(hotlist_check)] if hotlist_check is not None else []
        held += [_controls(controls_book, controller.config.school.code)] if controls_book is not None else []
        held += [_credits(credits_book)] if credits_book is not None else []
        self.by_topic = {topic: push for push in held for topic in push.topics}
        self.refused: Counter[str] = Counter()  # per kind (hotlist, controls, credits): pushes that failed a check

    def topics(self) -> dict[str, int]:
        """The topics to subscribe to, each with the most bytes a genuine push on it may have."""
        return {topic: push.max_bytes for topic, push in self.by_topic.items()}

    def apply(self, topic: str, raw: bytes) -> None:
        push = self.by_topic.get(topic)
        if push is None:
            return
        verify = partial(self.authorities.verify, parties=(push.party,))
        try:
            document = push.read(raw, push.key, verify, push.book.version(), self.controller.now())
        except AlreadyHeld:
            return
        except WireError as exc:
            self.refused[push.kind] += 1
            log.warning("refused a %s push: %s", push.kind, exc)
            return
        with self.db.atomic("journal"):
            push.apply(document)
            self.controller.journal_only(f"{push.kind}_applied", quiet=True, version=document.version)
