"""A guardian's controls on one card, and the school's periods of the day: the one schema for both.

Read from a scenario's ``cards:`` (``guardian:``), from the school's tool (``vending school controls
set``) and from the school's signed push on a machine (firmware/reporting/controls.py): all three
refuse the same things with the same field names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time

from pydantic import Field, ValidationError, field_validator

from firmware.config.machine import TimeWindow, parse_hhmm
from firmware.config.source import Strict, error_text
from firmware.domain import Allergen, Category, Guardian, Kind, Period

PERIOD_NAME = r"^[a-z][a-z_]{0,23}$"
MAX_PERIODS = 8
MAX_AMOUNT = 100_000


class GuardianControls(Strict):
    linked: bool = True
    daily_limit: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    # the most spent in each of the school's periods (breakfast, lunch, ...), by the period's name
    period_limits: dict[str, int] = Field(default={}, max_length=MAX_PERIODS)
    blocked_categories: list[Category] = Field(default=[], max_length=32)
    blocked_kinds: list[Kind] = Field(default=[], max_length=32)
    blocked_allergens: list[Allergen] = Field(default=[], max_length=32)
    low_balance: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)  # tell the guardian below this

    @field_validator("blocked_categories", "blocked_kinds", "blocked_allergens")
    @classmethod
    def _once(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # named twice is blocked once: stored and pushed once

    @field_validator("period_limits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        for name, limit in value.items():
            _period_name(name)
            if not 0 <= limit <= MAX_AMOUNT:
                raise ValueError(f"{name}: a limit is 0..{MAX_AMOUNT}, got {limit}")
        return value

    def guardian(self) -> Guardian:
        return Guardian(
            self.linked,
            self.daily_limit,
            tuple(self.blocked_categories),
            tuple(self.blocked_kinds),
            tuple(self.blocked_allergens),
            tuple(sorted(self.period_limits.items())),
            self.low_balance,
        )


class PeriodSpec(TimeWindow):
    """One period of the school day as the school defines it (its name is the key it is listed under)."""


def _period_name(name: str) -> None:
    if not re.fullmatch(PERIOD_NAME, name):
        raise ValueError(f"period {name!r}: lower-case letters and _, at most 24")


def school_periods(specs: dict[str, PeriodSpec]) -> tuple[Period, ...]:
    """The school's periods in time order; ``ValueError`` naming two that overlap or too many."""
    if len(specs) > MAX_PERIODS:
        raise ValueError(f"at most {MAX_PERIODS} periods, got {len(specs)}")
    for name in specs:
        _period_name(name)
    periods = sorted((Period(n, parse_hhmm(s.start), parse_hhmm(s.end)) for n, s in specs.items()),
                     key=lambda p: p.start)  # fmt: skip
    for earlier, later in zip(periods, periods[1:], strict=False):
        if later.start < earlier.end:
            raise ValueError(f"periods {earlier.name} and {later.name} overlap")
    return tuple(periods)


def parse_periods(raw: Mapping[str, object]) -> tuple[Period, ...]:
    """The school's periods from ``{name: {from, to}}`` (a push, the school's tool); ``ValueError`` saying why not."""
    try:
        return school_periods({name: PeriodSpec.model_validate(spec) for name, spec in raw.items()})
    except ValidationError as exc:
        raise ValueError(error_text(exc)) from None


def period_at(periods: tuple[Period, ...], at: time) -> Period | None:
    return next((period for period in periods if period.holds(at)), None)
