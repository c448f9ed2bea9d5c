"""A guardian's controls on a card, as the machine keeps them (JSON in one column, no names).

With the machine's wallet they live on the card's wallet row; with stored value on the card the
machine keeps only these controls, keyed by card (the card itself has no room for them).
"""

from __future__ import annotations

import functools
import json

from firmware.domain import Guardian
from firmware.journal.database import Database


def encode_guardian(guardian: Guardian) -> str:
    return json.dumps(
        {
            "linked": guardian.linked,
            "daily_limit": guardian.daily_limit,
            "blocked_categories": list(guardian.blocked_categories),
            "blocked_kinds": list(guardian.blocked_kinds),
            "blocked_allergens": list(guardian.blocked_allergens),
            "period_limits": dict(guardian.period_limits),
            "low_balance": guardian.low_balance,
        }
    )


@functools.lru_cache(maxsize=256)
def decode_guardian(text: str) -> Guardian:
    """The controls a row holds; cached by text (``Guardian`` is frozen, and most cards share a few)."""
    g = json.loads(text)
    return Guardian(
        linked=bool(g.get("linked", True)),
        daily_limit=g.get("daily_limit"),
        blocked_categories=tuple(g.get("blocked_categories", ())),
        blocked_kinds=tuple(g.get("blocked_kinds", ())),
        blocked_allergens=tuple(g.get("blocked_allergens", ())),
        period_limits=tuple(sorted(g.get("period_limits", {}).items())),
        low_balance=g.get("low_balance"),
    )


class GuardianBook:
    """Controls per card for the purse-on-card mode; a card without a row has none (``Guardian()``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, uid: str, guardian: Guardian) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO guardians (uid, controls) VALUES (?, ?)", (uid, encode_guardian(guardian))
        )

    def of(self, uid: str) -> Guardian:
        row = self.db.conn.execute("SELECT controls FROM guardians WHERE uid = ?", (uid,)).fetchone()
        return decode_guardian(row[0]) if row else Guardian()
