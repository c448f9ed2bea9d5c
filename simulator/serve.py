"""`vending serve`: the machine on the real clock with a real or emulated card reader.

One loop thread owns the controller (it is not thread-safe): the reader thread and the stdin thread
only put events on a queue. A reader that goes offline puts the machine out of order (card sales
stop, `out_of_service`) until it is back.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from firmware.controller.session import Controller
from firmware.ports import CardReader, CardTap

log = logging.getLogger(__name__)
READER_FAULT = "card reader offline"


@dataclass
class ServeLoop:
    controller: Controller
    reader: CardReader
    events: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    stopping: threading.Event = field(default_factory=threading.Event)
    after_event: Callable[[], None] | None = None  # e.g. apply remote commands, wake the publisher

    def reader_status(self, online: bool, detail: str) -> None:
        self.events.put(("reader", online))

    def read_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                tap = self.reader.read_tap(0.2)
            except Exception:  # a driver bug must not silently stop card reading: report offline, go on
                log.exception("card reader failed; treating it as offline")
                self.reader_status(False, "driver error")
                self.stopping.wait(1.0)
                continue
            if tap is not None:
                self.events.put(("tap", tap))

    def feed_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.events.put(("line", line.strip()))
        self.events.put(("line", "quit"))

    def run(self) -> None:
        """Handle events until ``quit``; fire timeouts from the real clock in between."""
        while not self.stopping.is_set():
            try:
                kind, value = self.events.get(timeout=0.2)
            except queue.Empty:
                self.controller.poll()
                if self.after_event is not None:
                    self.after_event()  # remote commands arrive without a local event
                continue
            if kind == "tap":
                self.controller.dispatch("tap", value)
            elif kind == "reader":
                self.on_reader(value)
            elif kind == "line" and not self.on_line(value):
                self.stopping.set()
            self.controller.poll()
            if self.after_event is not None:
                self.after_event()

    def on_reader(self, online: bool) -> None:
        state = self.controller.state.value
        if not online and state not in ("out_of_order", "service"):
            self.controller.dispatch("fault", READER_FAULT)
        elif online and state == "out_of_order" and self.controller.fault_detail == READER_FAULT:
            self.controller.dispatch("recover")

    def on_line(self, line: str) -> bool:
        """Keypad and door from stdin: `select A1`, `cancel`, `door open`, `door close`, `quit`."""
        words = line.split()
        if not words:
            return True
        verb = words[0]
        try:
            if verb == "quit":
                return False
            if verb == "select" and len(words) == 2:
                self.controller.dispatch("select", words[1].upper())
            elif verb == "cancel":
                self.controller.dispatch("cancel")
            elif verb == "door" and len(words) == 2 and words[1] in ("open", "close"):
                self.controller.dispatch(f"door_{words[1]}")
            else:
                log.warning("unknown input line %r (select SLOT | cancel | door open|close | quit)", line)
        except Exception as exc:  # noqa: BLE001 - a bad keypress must not stop the machine
            log.warning("input %r refused: %s", line, exc)
        return True


def virtual_tap(loop: ServeLoop, uid: str) -> None:
    """For tests and the virtual reader: a tap as if a driver had read it."""
    loop.events.put(("tap", CardTap(uid, "virtual", loop.controller.now())))
