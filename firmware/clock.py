"""The real clock (the only place the firmware reads the wall clock), and the books' time built on a clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# How far two clocks we trust may disagree: a command issued further ahead of ours was not issued by a
# clock we share (command_gate), and a wall clock further behind the books stops sales (BooksClock).
CLOCK_SKEW = timedelta(minutes=5)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class BooksClock:
    """The machine's time as its books keep it: never before the latest time they hold.

    A wall clock can step back: an RTC reset when its battery died, NTP correcting a clock that ran
    fast, a technician setting the time by hand. Stamped with that time, a sale would land before
    entries the books already hold, on a day that may be closed already; a day close settles only the
    days after the last one closed, so that sale would never be claimed from the issuer. So the books'
    time stands still (``now``) until the wall clock catches up with it (``behind``). Standing still
    for long would put lunchtime lockouts and daily limits at the wrong hour, so past ``CLOCK_SKEW``
    the machine stops selling instead (``Node.check_clock``).

    ``floor``: the latest time the books hold when the machine starts (their last journal entry).
    The publisher's thread reads it too, so the floor moves under a lock: it only ever rises.
    """

    def __init__(self, wall: Callable[[], datetime], floor: datetime | None = None) -> None:
        self._wall = wall
        self._floor = floor
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            wall, floor = self._wall(), self._floor
            if floor is not None and wall < floor:
                return floor
            self._floor = wall
            return wall

    def behind(self) -> timedelta:
        """How far the wall clock is behind the books (zero when it is not)."""
        floor = self._floor
        return max(floor - self._wall(), timedelta(0)) if floor is not None else timedelta(0)


def local_day_end(local_day: str, zone: ZoneInfo) -> datetime:
    """The midnight that ends ``local_day`` (YYYY-MM-DD) in ``zone``: when a trading day's last window closes."""
    return datetime.combine(date.fromisoformat(local_day) + timedelta(days=1), time(0), zone)
