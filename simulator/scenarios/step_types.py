"""What each scenario step's value may be: one type per step name (``STEP_TYPES``), checked strictly.

``schema.py`` reads a scenario and cross-checks steps against its cards, slots and machines; this module
declares the steps themselves, so a new step is added in one place.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from firmware.config.controls import GuardianControls
from firmware.config.source import Strict
from firmware.controller.machine import State
from firmware.messages import CANCEL_REASONS, DENIAL_REASONS
from simulator.scenarios.card_specs import UnknownCard

DURATION = re.compile(r"^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")
MAX_WAIT = timedelta(days=366)
CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")


def parse_duration(value: object) -> timedelta:
    """A ``wait``: seconds, or ``1h30m``-style text, days too (``7d``, ``1d12h``); at most ``MAX_WAIT``.

    A larger one was exit 70, an overflow.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        days, hours, minutes, seconds = 0, 0, 0, value
    elif isinstance(value, str) and value and (match := DURATION.fullmatch(value)):
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    else:
        raise ValueError(f"expected a duration like 90s, 10m, 2h, 1h30m or 7d, got {value!r}")
    if ((days * 24 + hours) * 60 + minutes) * 60 + seconds > MAX_WAIT.total_seconds():
        raise ValueError(f"a wait is at most {MAX_WAIT.days} days (a school year), got {value!r}")
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_clock(value: object) -> time:
    if not isinstance(value, str) or not (match := CLOCK.fullmatch(value)):
        raise ValueError(f'expected a local time "HH:MM" or "HH:MM:SS" (quoted), got {value!r}')
    return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def next_wall_time(now: datetime, zone: ZoneInfo, clock: time, said: str) -> datetime:
    """``clock`` (the step's ``said``) on ``now``'s day in ``zone``, not before ``now``, at its fixed offset then.

    The first of the two a night the clocks go back, or the second once the first has passed; a time the
    clocks skip is no time. At a fixed offset, a ``wait`` after it counts real time (added to a zone's
    wall time, 50 minutes from 01:30 BST that night gave 02:20 GMT, 110 minutes on).
    """
    local = now.astimezone(zone)
    first = datetime.combine(local.date(), clock, tzinfo=zone)
    if first.astimezone(UTC).astimezone(zone).time() != clock:
        raise ValueError(f"{said} is not a time on {local.date()} in {zone.key}: the clocks go forward past it")
    wall = next((moment for moment in (first, first.replace(fold=1)) if moment >= now), None)
    if wall is None:
        raise ValueError(f"time goes backwards: {said} is before {local:%H:%M:%S}")
    return wall.astimezone(timezone(wall.utcoffset() or timedelta(0)))


class Expect(Strict):
    outcome: Literal["vended", "denied", "refunded", "cancelled"] | None = None
    reason: str | None = None
    slot: str | None = None
    balance: int | dict[str, int] | None = None  # the last transaction's card, or {card name: balance}
    display: str | None = None
    stock: dict[str, int] | None = None
    state: str | None = None
    outbox: int | None = Field(default=None, ge=0)
    backend_sales: int | None = Field(default=None, ge=0)

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str | None) -> str | None:
        """A misspelt reason would only fail after the whole scenario ran; name the known ones now."""
        if value is not None and value not in (*DENIAL_REASONS, *CANCEL_REASONS):
            raise ValueError(f"unknown reason {value!r}; known: {', '.join((*DENIAL_REASONS, *CANCEL_REASONS))}")
        return value

    @field_validator("state")
    @classmethod
    def _known_state(cls, value: str | None) -> str | None:
        states = [state.value for state in State]
        if value is not None and value not in states:
            raise ValueError(f"unknown state {value!r}; known: {', '.join(states)}")
        return value

    def checks(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PowerCutSpec(Strict):
    cut_at: str


class HotlistStep(Strict):
    """The issuer lists (``add``) or unlists (``remove``) cards of the run (a ``hotlist:`` scenario)."""

    add: list[str] = []
    remove: list[str] = []


class ControlsStep(GuardianControls):
    """The school pushes a guardian's new controls on ``card`` (replacing its old ones; a ``controls:`` scenario)."""

    card: str


class RefundStep(Strict):
    """The vendor refunds the run's last sale by a signed command (with the school's approval above the limit)."""

    amount: int = Field(gt=0, le=100_000)


class TopUp(Strict):
    """A convenience-store top-up of a purse card (``payment: card``)."""

    card: str
    amount: int = Field(gt=0, le=10_000)


# step name -> the type of its value
STEP_TYPES: dict[str, Any] = {
    "select": str,
    "tap": str | UnknownCard,
    "expect": Expect,
    "wait": str | int,
    "at": str,
    "clock": str | datetime,
    "cancel": Literal[True],
    "door": Literal["open", "close"],
    "restock": dict[str, int],
    "jam": str,
    "empty": str,
    "power": Literal["cycle"] | PowerCutSpec,
    "fault": str,
    "recover": Literal[True],
    "broker": Literal["down", "up"],
    "backend": Literal["down", "up"],
    "issuer": Literal["down", "up"],
    "note": str,
    "privacy": Literal[True],
    "tear": int,
    "topup": TopUp,
    "machine": str,
    "hotlist": HotlistStep,
    "controls": ControlsStep,
    "refund": RefundStep,
}
ADAPTERS = {
    name: TypeAdapter(kind, config=ConfigDict(strict=True))
    if not isinstance(kind, type) or not issubclass(kind, BaseModel)
    else TypeAdapter(kind)
    for name, kind in STEP_TYPES.items()
}
