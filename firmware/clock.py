"""The real clock: the only place the firmware reads the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def local_day_end(local_day: str, zone: ZoneInfo) -> datetime:
    """The midnight that ends ``local_day`` (YYYY-MM-DD) in ``zone``: when a trading day's last window closes."""
    return datetime.combine(date.fromisoformat(local_day) + timedelta(days=1), time(0), zone)
