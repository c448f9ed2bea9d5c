"""Policies in a fixed order; the first denial wins, so a refusal always names one reason."""

from __future__ import annotations

from collections.abc import Sequence

from firmware.config.machine import MachineSetup
from firmware.policy.funds import FundsPolicy
from firmware.policy.lockouts import LockoutPolicy
from firmware.policy.profiles import ProfilePolicy
from firmware.ports import Denial, SaleRequest, SalesPolicy


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
    """Who may buy (profile), when (lockouts), then whether the card can pay."""
    return PolicyChain([ProfilePolicy(), LockoutPolicy(setup.config.lockouts), FundsPolicy()])
