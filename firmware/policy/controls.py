"""The school's pushed guardian controls: they replace the machine's local ones, and add limits per period.

``PushedControls`` wraps the chain: a card the school's push names is judged under the school's
controls (newer than anything the machine was set up with). ``PeriodLimitPolicy`` refuses a sale that
would take the card's spend in the current period of the school day over the guardian's limit.

Where the spend comes from: with stored value on the card, from the card's own log, so the limit holds
across every machine the card meets -- each log step carries the day's spend, so the period's spend
is the newest step's less the last one before the period began; when the three-step log no longer
reaches back that far, the whole day's spend counts (never more than the limit is sold). Otherwise
from this machine's journal: a period limit then holds per machine (docs/payments.md).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from firmware.config.controls import period_at
from firmware.domain import Denial, Period, SaleRequest
from firmware.messages import Message, period_names
from firmware.ports import PeriodSpend, SalesPolicy, SchoolControls


class PushedControls:
    """Implements ``SalesPolicy``: the inner chain, asked with the school's controls on a card it names."""

    def __init__(self, controls: SchoolControls, inner: SalesPolicy) -> None:
        self.controls = controls
        self.inner = inner

    def evaluate(self, request: SaleRequest) -> Denial | None:
        pushed = self.controls.guardian_for(request.account.uid)
        if pushed is not None:
            request = replace(request, account=replace(request.account, guardian=pushed))
        return self.inner.evaluate(request)


class PeriodLimitPolicy:
    def __init__(self, controls: SchoolControls, spend: PeriodSpend) -> None:
        self.controls = controls
        self.spend = spend

    def evaluate(self, request: SaleRequest) -> Denial | None:
        limits = dict(request.account.guardian.period_limits)
        if not limits:
            return None
        period = period_at(self.controls.periods(), request.local_time.time())
        if period is None or period.name not in limits:
            return None
        spent = self._spent(request, period)
        limit = limits[period.name]
        if spent + request.price.amount <= limit:
            return None
        zh, en = period_names(period.name)
        return Denial(
            "period_limit",
            Message("denied.period_limit", {"period_zh": zh, "period_en": en, "limit": limit, "spent": spent}),
            {"period": period.name, "limit": limit, "spent_in_period": spent, "price": request.price.amount},
        )

    def _spent(self, request: SaleRequest, period: Period) -> int:
        local = request.local_time
        start = datetime.combine(local.date(), period.start, local.tzinfo)
        account = request.account
        log = account.card_log
        if log is None:  # the machine's journal: this machine's sales
            end = datetime.combine(local.date(), period.end, local.tzinfo)
            return self.spend(account.uid, local.date().isoformat(), start, end)
        before = next((step.day_spent for step in log if step.at < start), 0)
        return (log[0].day_spent if log else 0) - before
