"""What every serial driver shares: open with backoff, read frames, debounce presentations, report online/offline.

Implements the ``CardReader`` port. Every wait in a driver -- backoff, debounce, a frame's deadline,
a pause between searches -- goes through the injected ``monotonic`` and ``sleep`` (tests drive them);
tap times come from the injected ``Clock``. Nothing here knows a protocol: a driver gives its pure
framer's ``decode`` to ``read_frame``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware.domain import CardLink, CardTap
from firmware.ports import Clock
from firmware.readers.transport import ReaderOffline, SerialTransport

log = logging.getLogger(__name__)
StatusListener = Callable[[bool, str], None]
Decoder = Callable[[bytes], tuple[int, object | None]]  # a pure framer: (bytes consumed, frame or None)


@dataclass
class ReaderSpec:
    driver: str
    port: str
    baud: int
    debounce_s: float = 1.0
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.driver}:{self.port}"


class SerialReader:
    """A card reader on a serial port; subclasses speak one protocol through its pure framer."""

    driver = "serial"

    def __init__(
        self,
        spec: ReaderSpec,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_status: StatusListener | None = None,
        backoff_max_s: float = 8.0,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.identity = ""  # what the reader said it is at start-up (a PN532's firmware), for the probe and logs
        self.on_status = on_status or (lambda online, detail: None)
        self.transport: SerialTransport | None = None
        self.online: bool | None = None  # unknown until the first open: a port that never opens is offline at once
        self.backoff_s = 0.25
        self.backoff_max_s = backoff_max_s
        self.next_attempt = 0.0
        self.buffer = b""
        self.present: str | None = None
        self.last_seen = 0.0

    # ---- connection ---------------------------------------------------------------------------
    def ensure_open(self) -> bool:
        if self.transport is not None:
            return True
        now = self.monotonic()
        if now < self.next_attempt:
            return False
        try:
            self.transport = SerialTransport(self.spec.port, self.spec.baud)
            self.buffer = b""
            self.start()
        except ReaderOffline as exc:
            self._drop(str(exc))
            return False
        self.backoff_s = 0.25
        self.present = None  # after a reconnect, whatever is on the reader is a new presentation
        self._set_online(True, f"opened {self.spec.port} at {self.spec.baud} baud")
        return True

    def start(self) -> None:
        """Protocol start-up after the port opened (wake-up, configuration); raise ReaderOffline to retry."""

    def _drop(self, detail: str) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.next_attempt = self.monotonic() + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, self.backoff_max_s)
        self._set_online(False, detail)

    def _set_online(self, online: bool, detail: str) -> None:
        if online != self.online:
            self.online = online
            (log.info if online else log.warning)(
                "reader %s %s: %s", self.name, "online" if online else "offline", detail
            )
            self.on_status(online, detail)

    # ---- the CardReader port ------------------------------------------------------------------
    def read_tap(self, timeout: float | None = None) -> CardTap | None:
        if not self.ensure_open():
            return None
        try:
            uid = self.poll(timeout if timeout is not None else 0.2)
        except ReaderOffline as exc:
            self._drop(str(exc))
            return None
        return self.presented(uid)

    def poll(self, timeout: float) -> str | None | bool:
        """One look at the field: a uid, ``None`` (no card seen) or ``False`` (nothing learned)."""
        raise NotImplementedError

    def presented(self, uid: str | None | bool) -> CardTap | None:
        """Debounce: a card held is one tap; lifted for longer than the debounce and back is a new tap."""
        now = self.monotonic()
        if uid is False or uid is True:
            return None
        if uid is None:
            if self.present is not None and now - self.last_seen > self.spec.debounce_s:
                self.present = None
            return None
        same = uid == self.present and now - self.last_seen <= self.spec.debounce_s
        self.present, self.last_seen = uid, now
        if same:
            return None
        log.info("reader %s: card presented", self.name)  # never the uid
        return CardTap(uid, self.spec.driver, self.clock.now(), link=self.link_to(uid))

    def link_to(self, uid: str) -> CardLink | None:
        """How the machine reaches the card ``uid`` while it stays on the reader; ``None``: an id-only reader."""
        return None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    @property
    def port(self) -> SerialTransport:
        """The open transport; a driver step with the port closed is a reader that went away."""
        if self.transport is None:
            raise ReaderOffline(f"reader {self.name}: the port is not open")
        return self.transport

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read_frame(self, decode: Decoder, timeout: float) -> object | None:
        """Accumulate bytes until the framer yields a frame or ``timeout`` passes."""
        port = self.port
        deadline = self.monotonic() + timeout
        while True:
            self.buffer, frame = take_frame(decode, self.buffer)
            if frame is not None:
                return frame
            if self.monotonic() >= deadline:
                return None
            self.buffer += port.read()


def take_frame(decode: Decoder, buffer: bytes) -> tuple[bytes, object | None]:
    """The first whole frame in ``buffer`` past any noise, with the bytes after it; ``None`` until one is whole."""
    while buffer:
        consumed, frame = decode(buffer)
        if consumed == 0:
            break
        buffer = buffer[consumed:]
        if frame is not None:
            return buffer, frame
    return buffer, None
