"""The authorities' pushes a machine takes between events: lost cards, guardian controls, pending credits.

Each arrives on its own topic (``Inbox.push_topics``), is checked on the loop's thread (seal, signer,
version, expiry: firmware/reporting/pushed.py) and applied in one commit with the journal entry that
records the version applied. A push that fails a check is logged and counted, and changes nothing;
the version held arriving again (a reconnect's redelivery) is no incident.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from functools import partial

from firmware.controller.session import Controller
from firmware.identity.signing import TrustStore
from firmware.journal.controls import ControlsBook
from firmware.journal.credits import CreditsBook
from firmware.journal.database import Database
from firmware.journal.hotlist import HotlistCheck
from firmware.reporting import controls, credits, hotlist
from firmware.reporting.pushed import AlreadyHeld
from firmware.reporting.wire import WireError

log = logging.getLogger(__name__)


class Pushes:
    def __init__(self, controller: Controller, db: Database, authorities: TrustStore,
                 hotlist_check: HotlistCheck | None, controls_book: ControlsBook | None,
                 credits_book: CreditsBook | None = None) -> None:  # fmt: skip
        self.controller = controller
        self.db = db
        self.authorities = authorities
        self.hotlist = hotlist_check
        self.controls = controls_book
        self.credits = credits_book
        self.school = controller.config.school.code
        self.refused: Counter[str] = Counter()  # per kind (hotlist, controls): pushes that failed a check

    def topics(self) -> dict[str, int]:
        """The topics to subscribe to, each with the most bytes a genuine push on it may have."""
        found: dict[str, int] = {}
        if self.hotlist is not None:
            found |= {hotlist.FULL_TOPIC: hotlist.MAX_HOTLIST_BYTES, hotlist.DELTA_TOPIC: hotlist.MAX_HOTLIST_BYTES}
        if self.controls is not None:
            found[controls.topic(self.school)] = controls.MAX_CONTROLS_BYTES
        if self.credits is not None:
            found[credits.TOPIC] = credits.MAX_CREDITS_BYTES
        return found

    def apply(self, topic: str, raw: bytes) -> None:
        appliers = {
            controls.topic(self.school): ("controls", self._controls),
            credits.TOPIC: ("credits", self._credits),
        }
        kind, applier = appliers.get(topic, ("hotlist", self._hotlist))
        try:
            applier(raw, self.controller.now())
        except AlreadyHeld:
            return
        except WireError as exc:
            self.refused[kind] += 1
            log.warning("refused a %s push: %s", kind, exc)

    def _hotlist(self, raw: bytes, now: datetime) -> None:
        check = self.hotlist
        if check is None:
            return
        book = check.book
        verify = partial(self.authorities.verify, parties=("issuer",))
        document = hotlist.read(raw, check.key, verify, book.version(), now)
        with self.db.atomic("journal"):
            if document.kind == "full":
                book.replace(document.version, document.expires, document.entries)
            else:
                book.change(document.version, document.expires, document.add, document.remove)
            self.controller.journal_only("hotlist_applied", quiet=True, version=document.version)

    def _controls(self, raw: bytes, now: datetime) -> None:
        book = self.controls
        if book is None:
            return
        verify = partial(self.authorities.verify, parties=("school",))
        document = controls.read(raw, book.key, verify, book.version(), now)
        with self.db.atomic("journal"):
            book.replace(document.version, document.periods, document.cards)
            self.controller.journal_only("controls_applied", quiet=True, version=document.version)

    def _credits(self, raw: bytes, now: datetime) -> None:
        book = self.credits
        if book is None:
            return
        verify = partial(self.authorities.verify, parties=("issuer",))
        document = credits.read(raw, book.key, verify, book.version(), now)
        with self.db.atomic("journal"):
            book.replace(document.version, document.cards)
            self.controller.journal_only("credits_applied", quiet=True, version=document.version)
