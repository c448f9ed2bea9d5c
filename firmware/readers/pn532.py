"""The PN532 driver's policy over its command set (pn532_commands.py) and any serial port (base.py).

Wake-up, SAMConfiguration, firmware check, then a standing InListPassiveTarget: with
MxRtyPassiveActivation at FF the chip answers only when a card is in the field, so the host blocks
on the port instead of asking again and again. Once a second the search is cancelled (an ACK from
the host) and started anew, whose ACK shows the reader is still there; while a card stays on the
reader it is read every 0.1 s. All waiting is on the driver's injected clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property, partial

from firmware.cards.tag import CardGone, ClassicTag
from firmware.domain import CardLink, Exchange
from firmware.readers.base import SerialReader
from firmware.readers.pn532_commands import PN532Commands, parse_target
from firmware.readers.transport import ReaderOffline

log = logging.getLogger(__name__)
RESTART_SEARCH_S = 1.0  # how long a search stands before the host checks the reader is still answering
CARD_HELD_POLL_S = 0.1  # while a card stays on the reader, look again this often (debounce needs it)


class PN532Reader(SerialReader):
    driver = "pn532"
    searching_since: float | None = None  # when the standing InListPassiveTarget was sent
    next_search = 0.0

    @cached_property
    def chip(self) -> PN532Commands:
        """The command set, speaking through this driver's port (whichever is open) and its clock."""
        return PN532Commands(self.write, self.read_frame)

    @property
    def firmware(self) -> str:
        return self.identity

    def start(self) -> None:
        self.searching_since = None
        chip = self.chip
        chip.wake_up()
        chip.sam_configuration()
        self.identity = chip.firmware_version()
        chip.search_until_a_card()
        log.info("reader %s: %s", self.name, self.identity)

    @cached_property
    def chip_lock(self) -> threading.RLock:
        """The chip does one thing at a time: the reader thread's search and the controller's card session."""
        return threading.RLock()

    def poll(self, timeout: float) -> str | None | bool:
        with self.chip_lock:
            return self._poll(timeout)

    def _poll(self, timeout: float) -> str | None | bool:
        chip, now = self.chip, self.monotonic()
        if self.searching_since is None:
            if now < self.next_search:  # a card was just read: give the field a moment
                self.sleep(min(timeout, self.next_search - now))
                return False
            chip.start_search()
            self.searching_since = now
        params = chip.search_result(timeout)
        if params is None:
            if self.monotonic() - self.searching_since >= RESTART_SEARCH_S:
                chip.abort()  # cancel; the next search's ACK shows the reader is there
                self.searching_since = None
            return False
        self.searching_since = None
        if not params or params[0] == 0:
            return None
        uid = parse_target(params)
        chip.release(params[1:2])
        self.next_search = self.monotonic() + CARD_HELD_POLL_S
        return uid

    @contextmanager
    def card_session(self, uid: str) -> Iterator[ClassicTag]:
        """The card ``uid`` selected for a transaction (a purse read or debit), released after."""
        with self.card_exchange(uid) as exchange:
            yield ClassicTag(bytes.fromhex(uid), exchange)

    @contextmanager
    def card_exchange(self, uid: str) -> Iterator[Exchange]:
        """InDataExchange with the card ``uid``, listed again as target 1; ``CardGone`` if it has left.

        The standing search is cancelled first, under the chip's lock, which the session holds until
        the target is released: the reader thread waits (at most one search timeout) meanwhile.
        A reader that stops answering mid-session (unplugged, a dead chip) is ``CardGone`` to the
        payment, whose outcome is then known at the card's next tap, exactly as for a card pulled
        away; the port is dropped, so the reader thread reopens it. A card gone is forgotten by the
        debounce: put back at once, as the display asks, it is a new tap.
        """
        with self.chip_lock:
            try:
                chip = self.chip
                if self.searching_since is not None:
                    chip.abort()
                    self.searching_since = None
                if not chip.list_card(bytes.fromhex(uid)):
                    raise CardGone(f"card {uid[:2]}… is no longer on the reader")
                try:
                    yield chip.data_exchange
                finally:
                    self._release()
            except CardGone:
                self.present = None
                raise
            except ReaderOffline as exc:
                self._drop(str(exc))
                raise CardGone(f"the reader stopped answering during the card's transaction: {exc}") from None

    def _release(self) -> None:
        """End the session with the target; a reader gone by now is dropped (what the card holds is settled)."""
        try:
            self.chip.release(b"\x01")
        except ReaderOffline as exc:
            self._drop(str(exc))

    def link_to(self, uid: str) -> CardLink:
        return partial(self.card_exchange, uid)

    def close(self) -> None:
        if self.transport is not None and self.searching_since is not None:
            try:
                self.chip.abort()  # leave the chip idle, not searching
            except ReaderOffline:
                pass
        self.searching_since = None
        super().close()
