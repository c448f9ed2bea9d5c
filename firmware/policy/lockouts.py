"""Daily time windows when some profiles may not buy some categories (the pilot's lunchtime rule)."""

from __future__ import annotations

from collections.abc import Sequence

from firmware.config.machine import Lockout
from firmware.domain import Denial, SaleRequest
from firmware.messages import CATEGORY_NAMES, PROFILE_NAMES, Message


def in_window(lockout: Lockout, request: SaleRequest) -> bool:
    """Start inclusive, end exclusive: 11:00:00 is inside, 13:00:00 is outside."""
    local = request.local_time.timetz().replace(tzinfo=None)
    return lockout.start_time <= local < lockout.end_time


class LockoutPolicy:
    """Refuses a sale that falls in any configured window for the card's profile and product's category."""

    def __init__(self, lockouts: Sequence[Lockout]) -> None:
        self.lockouts = tuple(lockouts)

    def evaluate(self, request: SaleRequest) -> Denial | None:
        for lockout in self.lockouts:
            if (
                request.account.profile in lockout.profiles
                and request.product.category in lockout.categories
                and in_window(lockout, request)
            ):
                zh, en = CATEGORY_NAMES[request.product.category]
                who_zh, who_en = PROFILE_NAMES[request.account.profile]
                message = Message(
                    "denied.lunch_lockout",
                    {
                        "start": lockout.start,
                        "end": lockout.end,
                        "category_zh": zh,
                        "category_en": en,
                        "profile_zh": who_zh,
                        "profile_en": who_en,
                    },
                )
                return Denial(lockout.reason, message, {"from": lockout.start, "to": lockout.end})
        return None
