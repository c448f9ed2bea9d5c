"""Policies in a fixed order; the first denial wins, so a refusal always names one reason.

Order: is the card usable at all (guardian link), may this profile buy it (catalog), may it be sold
on campus (food rules), may it be sold now (lockouts), does the guardian allow it (blocks, daily
limit), can the card pay.
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware.config.machine import MachineSetup
from firmware.domain import Denial, SaleRequest
from firmware.policy.food import FoodRulesPolicy
from firmware.policy.funds import FundsPolicy
from firmware.policy.guardian import GuardianPolicy, LinkPolicy
from firmware.policy.lockouts import LockoutPolicy
from firmware.policy.profiles import ProfilePolicy
from firmware.ports import SalesPolicy


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


def build_policy(setup: MachineSetup) -> PolicyChain:
    config = setup.config
    members: list[SalesPolicy] = [LinkPolicy(), ProfilePolicy()]
    if config.rules:
        members.append(FoodRulesPolicy(setup.catalog, config.school.level, setup.rulesets))
    members += [LockoutPolicy(config.lockouts), GuardianPolicy(), FundsPolicy()]
    return PolicyChain(members)
