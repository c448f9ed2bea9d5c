"""The school's guardian controls on the wire: signed by the school, sealed with the key it shares with its machines.

Guardians decide during the term (a lower daily limit, a blocked allergen, limits per period of the
school day); the school, which alone knows whose card is whose, pushes every card's controls to its
machines as one document, retained on ``school/v1/<school>/controls`` so a machine that connects
gets it. A card is named ``HMAC-SHA256(controls key, "controls|" uid)[:16]``; the document also
carries the school's periods (breakfast, lunch, ... as the school defines them). Each push has a
higher ``version``: a machine applies only a newer one, so an older push never overwrites a newer.
The sealed text is padded to ``PAD`` bytes: the vendor that runs the broker learns neither the
controls nor how many cards have any.

A push has an expiry (a push delayed past it is refused), but the controls a machine applied stay
in force until the next push: a guardian's decision does not lapse because the school was quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from firmware.config.controls import GuardianControls, parse_periods
from firmware.config.source import error_text
from firmware.domain import CARD_NAME, Guardian, Period
from firmware.identity.signing import Identity
from firmware.reporting.pushed import check_order, open_push, push_head, read_head, seal_push
from firmware.reporting.signed import Verifier
from firmware.reporting.wire import WireError

LABEL = "controls"
PAD = 64 * 1024  # the sealed text's bucket: a school's controls fit a few of them
MAX_CARDS = 20_000
MAX_CONTROLS_BYTES = 16 * 1024 * 1024


def topic(school: str) -> str:
    return f"school/v1/{school}/controls"


@dataclass(frozen=True)
class ControlsDocument:
    version: int
    issued: datetime
    expires: datetime
    periods: tuple[Period, ...]
    cards: Mapping[str, Guardian]  # card name -> the guardian's controls


def compose(identity: Identity, key: bytes, version: int, issued: datetime, expires: datetime,
            periods: Mapping[str, Mapping[str, str]], cards: Mapping[str, Mapping[str, Any]]) -> str:  # fmt: skip
    """The school's push: ``periods`` {name: {from, to}}, ``cards`` {card name: controls as the schema has them}."""
    document = push_head("controls", version, issued, expires) | {"periods": dict(periods), "cards": dict(cards)}
    return seal_push(identity, key, LABEL, document, pad_to=PAD)


def read(raw: bytes, key: bytes, verify: Verifier, held: int, now: datetime) -> ControlsDocument:
    """The push in ``raw`` if it is the school's, unexpired and newer than version ``held``; ``WireError`` if not."""
    body = open_push(raw, key, LABEL, verify, MAX_CONTROLS_BYTES)
    head = read_head(body, {"controls": ("periods", "cards")})
    check_order(head, held, now)
    periods, cards = body["periods"], body["cards"]
    if not isinstance(periods, dict) or not isinstance(cards, dict) or len(cards) > MAX_CARDS:
        raise WireError(f"periods, cards: expected objects (at most {MAX_CARDS} cards)")
    try:
        known = parse_periods(periods)
    except ValueError as exc:
        raise WireError(f"periods: {exc}") from None
    names = {period.name for period in known}
    controls: dict[str, Guardian] = {}
    for name, spec in cards.items():
        if not CARD_NAME.fullmatch(name):
            raise WireError("cards: every card is named by 32 lower-case hex digits")
        try:
            guardian = GuardianControls.model_validate(spec).guardian()
        except ValidationError as exc:
            raise WireError(f"cards.{name[:8]}…: {error_text(exc)}") from None
        if unknown := [period for period, _ in guardian.period_limits if period not in names]:
            raise WireError(f"cards.{name[:8]}…: period_limits names {unknown[0]!r}, not one of the school's periods")
        controls[name] = guardian
    return ControlsDocument(head.version, head.issued, head.expires, known, controls)
