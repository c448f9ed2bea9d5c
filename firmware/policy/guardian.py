"""Guardian controls on a minor's card: not linked, blocked categories, kinds or allergens, a daily limit.

The machine holds them keyed by card uid (no names); the local day's spend comes from the vends table.
"""

from __future__ import annotations

from firmware.domain import Denial, SaleRequest
from firmware.messages import ALLERGEN_NAMES, Message


class LinkPolicy:
    """A parent may decline to link the student card to payment: then nothing is sold on it."""

    def evaluate(self, request: SaleRequest) -> Denial | None:
        if request.account.guardian.linked:
            return None
        return Denial("card_not_linked", Message("denied.card_not_linked"))


class GuardianPolicy:
    def evaluate(self, request: SaleRequest) -> Denial | None:
        guardian = request.account.guardian
        product = request.product
        if product.category in guardian.blocked_categories or (product.kind and product.kind in guardian.blocked_kinds):
            return Denial(
                "guardian_blocked",
                Message("denied.guardian_blocked"),
                {"category": product.category, "kind": product.kind},
            )
        blocked = [a for a in (*product.allergens, *product.may_contain) if a in guardian.blocked_allergens]
        if blocked:  # "may contain" too: for an allergic child a cross-contact warning is a refusal
            zh, en = ALLERGEN_NAMES[blocked[0]]
            return Denial(
                "allergen_blocked",
                Message("denied.allergen_blocked", {"allergen_zh": zh, "allergen_en": en}),
                {"allergen": blocked[0]},
            )
        limit = guardian.daily_limit
        if limit is None:
            return None
        spent = request.spent_today.amount  # read only here: a card without a limit costs no query
        if spent + request.price.amount > limit:
            return Denial(
                "guardian_limit",
                Message("denied.guardian_limit", {"limit": limit, "spent": spent}),
                {"limit": limit, "spent_today": spent, "price": request.price.amount},
            )
        return None
