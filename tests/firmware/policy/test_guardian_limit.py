"""The guardian's daily limit reads the day's spend, and only a card with a limit costs that query."""

from __future__ import annotations

from datetime import UTC, datetime

from firmware.domain import CardAccount, Guardian, SaleRequest
from firmware.money import Money
from firmware.policy.guardian import GuardianPolicy
from tests.firmware.policy.test_food_rules import product


def request(guardian: Guardian, spend: list[int]) -> SaleRequest:
    """A 25-dollar sale; ``spend`` records each time the policy asks for the day's spend (30 so far)."""

    def spent() -> Money:
        spend.append(30)
        return Money(30, "TWD")

    return SaleRequest(
        slot="A1",
        product_id="soy-milk",
        product=product("soy_milk", category="drink"),
        price=Money(25, "TWD"),
        account=CardAccount("04A1B2C3D4E5F6", "student", Money(500, "TWD"), guardian),
        local_time=datetime(2026, 3, 2, 10, tzinfo=UTC),
        spend=spent,
    )


def test_a_card_without_a_daily_limit_is_decided_without_reading_the_days_spend() -> None:
    asked: list[int] = []
    assert GuardianPolicy().evaluate(request(Guardian(), asked)) is None
    assert asked == []


def test_a_daily_limit_is_held_against_the_days_spend_read_once() -> None:
    asked: list[int] = []
    assert GuardianPolicy().evaluate(request(Guardian(daily_limit=55), asked)) is None  # 30 + 25 = 55
    denial = GuardianPolicy().evaluate(request(Guardian(daily_limit=54), asked))
    assert denial is not None and denial.reason == "guardian_limit"
    assert denial.detail == {"limit": 54, "spent_today": 30, "price": 25}
    assert asked == [30, 30], "one read per decision"
