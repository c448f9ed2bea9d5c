"""Policies in a fixed order; the first denial wins, so a refusal always names one reason.

Order: is the card usable at all (guardian link), may this profile buy it (catalog), may it be sold
on campus (food rules), may it be sold now (lockouts), does the guardian allow it (blocks, daily
limit, the period's limit), can the card pay. The school's pushed controls, where a machine takes
them, replace a card's local ones before the chain is asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware.config.machine import MachineSetup
from firmware.domain import Denial, SaleRequest
from firmware.policy.controls import PeriodLimitPolicy, PushedControls
from firmware.policy.food import FoodRulesPolicy
from firmware.policy.funds import FundsPolicy
from firmware.policy.guardian import GuardianPolicy, LinkPolicy
from firmware.policy.hotlist import HotlistPolicy
from firmware.policy.lockouts import LockoutPolicy
from firmware.policy.profiles import ProfilePolicy
from firmware.ports import Hotlist, PeriodSpend, SalesPolicy, SchoolControls


class PolicyChain:
    """Implements ``SalesPolicy`` by asking each member in turn."""

    def __init__(self, members: Sequence[SalesPolicy]) -> None:
        self.members = tuple(members)

    def evaluate(self, request: SaleRequest) -> Denial | None:
        for member in self.members:
            denial = member.evaluate(request)
            if denial is not None:
                return denial
        return None


def build_policy(
    setup: MachineSetup,
    hotlist: Hotlist | None = None,
    controls: SchoolControls | None = None,
    period_spend: PeriodSpend | None = None,
) -> SalesPolicy:
    """The chain for a machine; with the issuer's lost-card list (``hotlist``), that is asked first.

    With the school's pushed ``controls`` (and this machine's ``period_spend`` for cards whose spend
    it journals), a card the school names is judged under the school's controls, period limits too.
    """
    config = setup.config
    members: list[SalesPolicy] = [HotlistPolicy(hotlist)] if hotlist is not None else []
    members += [LinkPolicy(), ProfilePolicy()]
    if config.rules:
        members.append(FoodRulesPolicy(setup.catalog, config.school.level, setup.rulesets))
    members += [LockoutPolicy(config.lockouts), GuardianPolicy()]
    if controls is not None and period_spend is not None:
        members.append(PeriodLimitPolicy(controls, period_spend))
    chain = PolicyChain([*members, FundsPolicy()])
    return PushedControls(controls, chain) if controls is not None else chain
