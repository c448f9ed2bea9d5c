"""Per-product profile lists: e.g. coffee for staff only."""

from __future__ import annotations

from firmware.domain import Denial, SaleRequest
from firmware.messages import PROFILE_NAMES, Message


class ProfilePolicy:
    """Refuses a product to a card whose profile the catalog does not list for it."""

    def evaluate(self, request: SaleRequest) -> Denial | None:
        allowed = request.product.profiles
        profile = request.account.profile
        if profile in allowed:
            return None
        zh, en = PROFILE_NAMES.get(profile, (profile, profile))
        return Denial(
            "not_permitted",
            Message("denied.not_permitted", {"profile_zh": zh, "profile_en": en}),
            {"profile": profile, "allowed": list(allowed)},
        )
