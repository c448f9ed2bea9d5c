"""What a scenario run found: each expectation checked, and the tally of its sales and refusals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulator.tally import SalesTally


@dataclass
class ExpectationResult:
    line: int
    key: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        if self.key == "display":
            return isinstance(self.actual, str) and str(self.expected) in self.actual
        return bool(self.expected == self.actual)


@dataclass
class ScenarioResult(SalesTally):
    expectations: list[ExpectationResult] = field(default_factory=list)
    power_cycles: int = 0
    held: int = 0  # reports still held for their release window when the run ended
    next_release: datetime | None = None  # when the first of them goes

    @property
    def failures(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.ok]

    @property
    def passed(self) -> bool:
        return not self.failures
