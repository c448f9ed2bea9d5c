"""The ``virtual`` reader: taps pushed in-process (scenarios, the simulator), read like a real driver's."""

from __future__ import annotations

from collections import deque

from firmware.domain import CardTap
from firmware.ports import Clock


class VirtualReader:
    name = "virtual"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._taps: deque[CardTap] = deque()
        self.closed = False

    def present(self, uid: str) -> None:
        self._taps.append(CardTap(uid.upper(), self.name, self.clock.now()))

    def read_tap(self, timeout: float | None = None) -> CardTap | None:
        return self._taps.popleft() if self._taps else None

    def close(self) -> None:
        self.closed = True
