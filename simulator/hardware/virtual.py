"""Virtual devices. They outlive a simulated power cut: the world keeps its state, the controller does not."""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path

from firmware.app.node import Node
from firmware.dispensers.virtual import VirtualDispenser
from firmware.messages import Message
from firmware.readers.virtual import VirtualReader  # noqa: F401 - the product's virtual reader
from simulator.safe_output import replace_file


class VirtualClock:
    """Time the scenario drives; it goes backwards only when ``reset``, as a wall clock may."""

    _now: datetime

    def __init__(self, start: datetime) -> None:
        self.reset(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"time cannot go backwards ({moment.isoformat()} < {self._now.isoformat()})")
        self._now = moment

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    def reset(self, moment: datetime) -> None:
        """The wall clock set to ``moment``, earlier or later: an RTC reset, NTP stepping it, a hand setting it.

        Only the machine's books keep their time from going back (firmware.clock.BooksClock).
        """
        if moment.tzinfo is None:
            raise ValueError("the virtual clock needs an aware time")
        self._now = moment


class RecordingDisplay:
    """Keeps the last ``HISTORY`` messages shown, in both languages.

    Bounded: the soak and the benchmarks show a message or three a vend for hours, and a list of
    every one grew without end (15,000 messages kept over 5,000 vends, each pass of the collector
    walking them all).
    """

    HISTORY = 64

    def __init__(self) -> None:
        self.history: deque[Message] = deque(maxlen=self.HISTORY)

    def show(self, message: Message) -> None:
        self.history.append(message)

    @property
    def current(self) -> Message | None:
        return self.history[-1] if self.history else None

    def text(self) -> str:
        return self.current.both() if self.current else ""


class PersistentDispenser(VirtualDispenser):
    """A dispenser whose physical state survives the process: what fell into the tray stays there.

    Used by the crash harness, where the whole process dies; the file is replaced atomically and
    fsynced before ``vend`` returns, as a real drop is physical before the controller hears of it.
    """

    def __init__(self, path: Path, physical_stock: dict[str, int] | None = None) -> None:
        super().__init__(physical_stock)
        self.path = path
        if path.exists():
            data = json.loads(path.read_text())
            self.physical, self.jammed, self.dispensed = data["physical"], set(data["jammed"]), set(data["dispensed"])
        else:
            self._save()

    def _save(self) -> None:
        state = {"physical": self.physical, "jammed": sorted(self.jammed), "dispensed": sorted(self.dispensed)}
        replace_file(self.path, json.dumps(state).encode())

    def jam(self, slot: str) -> None:
        super().jam(slot)
        self._save()

    def vend(self, slot: str, txn_id: str) -> bool:
        dropped = super().vend(slot, txn_id)
        self._save()
        return dropped


def advance(node: Node, clock: VirtualClock, moment: datetime) -> None:
    """Move virtual time to ``moment``, stopping at each of the node's deadlines on the way to run its tick.

    What a machine left running would do between events, on virtual time: a session timeout, a held
    sale's release and a local midnight's day close all happen at their moment, not when time jumps past.
    """
    while (deadline := node.next_deadline) is not None and deadline <= moment:
        clock.set(max(deadline, clock.now()))
        node.tick()
    clock.set(moment)  # an instant already passed is an error: virtual time never goes backwards


class DoorSwitch:
    def __init__(self) -> None:
        self.open = False

    def is_open(self) -> bool:
        return self.open


class VirtualKeypad:
    def __init__(self) -> None:
        self._keys: deque[str] = deque()

    def press(self, key: str) -> None:
        self._keys.append(key)

    def read_key(self, timeout: float | None = None) -> str | None:
        return self._keys.popleft() if self._keys else None
