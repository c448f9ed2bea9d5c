"""Which sale or refusal a guardian is told of, through the school, once: low balance, a limit reached.

Only for cards the school's pushed controls name (``controls: school``): the guardian set the
threshold there, and the school, which alone knows whose card it is, passes the alert on. An alert
names the card as the push does (``controls_name``), so the school finds the student and nobody else
can. Each is told once: a low balance when a sale takes the card below the guardian's threshold
(not at every sale after), a limit the first time a sale is refused by it that day (per period).
The machine remembers what it told per card and day, forgotten the next day.
"""

from __future__ import annotations

import hashlib
from typing import Any

from firmware.domain import Denial
from firmware.identity.pseudonym import controls_name
from firmware.journal.controls import ControlsBook

LIMITS = ("guardian_limit", "period_limit")


class GuardianAlertBook:
    """Implements the ``GuardianAlerts`` port on the machine's books (joins the caller's transaction)."""

    def __init__(self, controls: ControlsBook) -> None:
        self.controls = controls
        self.db = controls.db

    def after_sale(self, uid: str, price: int, balance: int, day: str) -> dict[str, Any] | None:
        guardian = self.controls.guardian_for(uid)
        threshold = guardian.low_balance if guardian is not None else None
        if threshold is None or not balance < threshold <= balance + price:
            return None  # above the threshold, or below it already before this sale (told then)
        return self._once(uid, day, "low_balance", "", {"balance": balance, "threshold": threshold})

    def after_denial(self, uid: str, denial: Denial, day: str) -> dict[str, Any] | None:
        if denial.reason not in LIMITS or self.controls.guardian_for(uid) is None:
            return None
        period = str(denial.detail.get("period", ""))
        facts = {"reason": denial.reason, "limit": int(denial.detail.get("limit", 0))}
        return self._once(uid, day, "limit_reached", period, facts | ({"period": period} if period else {}))

    def _once(self, uid: str, day: str, alert: str, period: str, facts: dict[str, Any]) -> dict[str, Any] | None:
        card = controls_name(self.controls.key, uid)
        key = hashlib.sha256(f"{card}|{day}|{alert}|{period}".encode()).hexdigest()
        conn = self.db.conn
        conn.execute("DELETE FROM guardian_alerts WHERE day < ?", (day,))
        if conn.execute("INSERT OR IGNORE INTO guardian_alerts (key, day) VALUES (?, ?)", (key, day)).rowcount == 0:
            return None
        return {"card": card, "alert": alert, "day": day, **facts}
