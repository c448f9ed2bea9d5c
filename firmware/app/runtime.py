"""The machine's main loop: what would run on the real machine, started by ``vending serve`` and the tests.

One loop thread owns the node (the controller is not thread-safe): the reader thread and the input
thread only put events on a queue, and between events the loop runs ``Node.tick`` (day close,
timeouts, key rotation, remote commands), the same tick a scenario or a fleet day runs on virtual
time. A reader that goes offline puts the machine out of order (card sales stop, ``out_of_service``)
until it is back.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Literal

from firmware.app.keypad import ENDED_UNREAD, INPUT_HELP, NotAnInput, parse
from firmware.app.node import Node
from firmware.controller.notices import privacy_notice
from firmware.domain import CardTap
from firmware.ports import CardReader
from firmware.threads import daemon, named

log = logging.getLogger(__name__)
READER_FAULT = "card reader offline"
POLL_S = 0.2
EventKind = Literal["tap", "reader", "line"]


class Runtime:
    """Reader, keypad/door lines and the node's tick, on one loop."""

    def __init__(
        self, node: Node, reader: CardReader | None = None, answer: Callable[[str], None] | None = None
    ) -> None:
        self.node = node
        self.controller = node.controller
        self.books = node.books
        self.answer = answer or log.warning  # where `help`, `status` and `stock` print (stdout for `vending serve`)
        self.reader_online: bool | None = None
        self.reader = reader
        self.events: queue.Queue[tuple[EventKind, object]] = queue.Queue()
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- producers (any thread) -----------------------------------------------------------------
    def reader_status(self, online: bool, detail: str) -> None:
        """A driver's on_status callback: the loop decides what the state machine does about it."""
        self.reader_online = online
        self.events.put(("reader", online))

    def tap(self, tap: CardTap) -> None:
        self.events.put(("tap", tap))

    def line(self, text: str) -> None:
        self.events.put(("line", text.strip()))

    def read_forever(self) -> None:
        if self.reader is None:
            return
        while not self.stopping.is_set():
            try:
                tap = self.reader.read_tap(POLL_S)
            except Exception:  # a driver bug must not silently stop card reading: report offline, go on
                log.exception("card reader failed; treating it as offline")
                self.reader_status(False, "driver error")
                self.stopping.wait(1.0)
                continue
            if tap is not None:
                self.tap(tap)

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Each line as an input; their end is a ``quit``, said on stderr when no line came at all."""
        read = False
        for text in lines:
            read = True
            self.line(text)
        if not read:
            log.warning(ENDED_UNREAD)
        self.line("quit")

    # ---- the loop (one thread) ------------------------------------------------------------------
    def run(self) -> None:
        """Handle events until ``quit``; fire timeouts and apply remote commands in between."""
        while not self.stopping.is_set():
            try:
                kind, value = self.events.get(timeout=POLL_S)
            except queue.Empty:
                self.between_events()
                continue
            if kind == "tap" and isinstance(value, CardTap):
                self.controller.present(value)
            elif kind == "reader":
                self.on_reader(bool(value))
            elif kind == "line" and not self.on_line(str(value)):
                self.stopping.set()
            self.between_events()

    def between_events(self) -> None:
        self.node.tick()

    def on_reader(self, online: bool) -> None:
        """A reader fault is cleared by the reader coming back, never by a door cycle (``fault_persists``)."""
        self.controller.standing_fault(READER_FAULT, not online)

    def on_line(self, line: str) -> bool:
        """One keypad, door or console line (``firmware.app.keypad``); False for ``quit``."""
        try:
            parsed = parse(line)
        except NotAnInput as refusal:  # a line that is no input changes nothing
            self.answer(str(refusal))
            return True
        if parsed is None:
            return True
        verb, argument = parsed
        if verb == "quit":
            return False
        try:
            getattr(self, f"key_{verb}")(argument)
        except Exception as exc:  # noqa: BLE001 - a bad keypress must not stop the machine
            log.warning("input %r refused: %s", line, exc)
        return True

    # ---- what each input of keypad.INPUTS does: key_<verb>(argument) (quit ends the loop instead) ---------
    def key_select(self, slot: str) -> None:
        self.controller.dispatch("select", slot.upper())

    def key_cancel(self, _: str) -> None:
        self.controller.dispatch("cancel")

    def key_door(self, way: str) -> None:
        self.controller.dispatch(f"door_{way}")

    def key_privacy(self, _: str) -> None:  # the notice button: who learns what, and whom to ask
        self.controller.show(privacy_notice(self.controller.config))

    def key_help(self, _: str) -> None:
        self.answer(f"input: {INPUT_HELP}")

    def key_status(self, _: str) -> None:
        self.answer(self.status_line())

    def key_stock(self, _: str) -> None:
        for slot in self.books.inventory.all():
            enabled = "" if slot.enabled else " (disabled)"
            self.answer(f"{slot.slot} {slot.product} {slot.stock}/{slot.capacity} NT${slot.price}{enabled}")

    def status_line(self) -> str:
        """What a service technician asks first: state, reader, reports waiting, local time."""
        controller = self.controller
        now = controller.now().astimezone(controller.config.zone).isoformat(timespec="seconds")
        reader = {None: "unknown", True: "online", False: "offline"}[self.reader_online]
        publisher = self.node.publisher
        waiting = publisher.depth() if publisher is not None else "no broker"
        detail = f" ({controller.fault_detail})" if controller.state.value == "out_of_order" else ""
        return f"{controller.config.id} {controller.state.value}{detail}, reader {reader}, outbox {waiting}, {now}"

    # ---- lifecycle ------------------------------------------------------------------------------
    def start_threads(self, lines: Iterable[str] | None = None) -> None:
        """The reader thread, and an input thread when ``lines`` is given (stdin for ``vending serve``)."""
        self._spawn("reader", self.read_forever)
        if lines is not None:
            self._spawn("input", lambda: self.feed_lines(lines))

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = daemon(target, name)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop reading and close the reader; the node's owner closes the node (and drains its outbox)."""
        self.stopping.set()
        for thread in self._threads:
            if thread.name == named("reader"):
                thread.join(timeout=5)
        if self.reader is not None:
            self.reader.close()
