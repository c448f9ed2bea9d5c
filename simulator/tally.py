"""Sales, revenue, refunds, denials and cancellations counted from the controller's events.

The scenario runner, each fleet machine and the fleet as a whole count the same things from the
same events, so they share this one definition (and a fleet adds machines' tallies together).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class SalesTally:
    sales: int = 0
    revenue: int = 0
    refunds: int = 0  # vends that did not drop, refunded by the machine itself
    operator_refunds: int = 0  # completed sales an operator refunded by a signed command
    operator_refunded: int = 0  # what those gave back (revenue counts the sales, as the cards saw them)
    denials: Counter[str] = field(default_factory=Counter)
    cancellations: Counter[str] = field(default_factory=Counter)

    def on_event(self, at: datetime, name: str, details: dict[str, Any]) -> None:
        """An ``EventSink``: count the events that end a transaction."""
        if name == "vended":
            self.sales += 1
            self.revenue += int(details.get("price", 0))
        elif name == "refunded":
            self.refunds += 1
        elif name == "command" and details.get("command") == "refund" and details.get("ok"):
            self.operator_refunds += 1
            self.operator_refunded += int(details.get("amount", 0))
        elif name == "denied":
            self.denials[str(details.get("reason"))] += 1
        elif name == "cancelled":
            self.cancellations[str(details.get("reason"))] += 1

    def add(self, other: SalesTally) -> None:
        self.sales += other.sales
        self.revenue += other.revenue
        self.refunds += other.refunds
        self.operator_refunds += other.operator_refunds
        self.operator_refunded += other.operator_refunded
        self.denials.update(other.denials)
        self.cancellations.update(other.cancellations)
