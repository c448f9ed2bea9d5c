"""Campus food rules behind the SalesPolicy port: verdicts computed once per product, refusals explained."""

from __future__ import annotations

from collections.abc import Sequence

from firmware.config.catalog import Catalog
from firmware.config.rules import RuleSet
from firmware.domain import Denial, SaleRequest
from firmware.messages import Message
from firmware.policy.rules import Verdict, evaluate


class FoodRulesPolicy:
    """Refuses ``not_compliant`` products, naming the rule and the numbers (first two violations shown)."""

    def __init__(self, catalog: Catalog, level: str, rulesets: Sequence[RuleSet]) -> None:
        self.verdicts: dict[str, Verdict] = {
            pid: evaluate(pid, product, level, rulesets) for pid, product in catalog.products.items()
        }

    def evaluate(self, request: SaleRequest) -> Denial | None:
        verdict = self.verdicts.get(request.product_id)
        if verdict is None or verdict.allowed:
            return None
        shown = verdict.violations[:2]
        message = Message(
            "denied.not_compliant",
            {"detail_zh": "；".join(v.zh for v in shown), "detail_en": "; ".join(v.en for v in shown)},
        )
        return Denial(
            "not_compliant",
            message,
            {"violations": [{"rule": v.rule, "value": v.value, "limit": v.limit} for v in verdict.violations]},
        )
