"""The school's guardian controls as this machine holds them: per card name, the school's periods, the version.

Replaced whole by each newer push, in one commit with the journal entry that records the version
applied (firmware/reporting/controls.py). A card the school's push does not name keeps the controls
the machine had locally (``cards.yaml``); a named one has the school's, which are newer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from firmware.config.machine import parse_hhmm
from firmware.domain import Guardian, Period
from firmware.identity.pseudonym import controls_name
from firmware.journal.database import Database
from firmware.journal.guardians import decode_guardian, encode_guardian
from firmware.journal.held import HeldPush

VERSION, PERIODS = "controls_version", "controls_periods"


class ControlsBook(HeldPush):
    """Implements the ``SchoolControls`` port from the machine's books and the school's shared key."""

    version_key = VERSION

    def __init__(self, db: Database, key: bytes) -> None:
        super().__init__(db)
        self.key = key

    def replace(self, version: int, periods: tuple[Period, ...], cards: Mapping[str, Guardian]) -> None:
        """A newer push (joins the current transaction)."""
        self.db.conn.execute("DELETE FROM school_controls")
        self.db.conn.executemany("INSERT INTO school_controls (entry, controls) VALUES (?, ?)",
                                 ((name, encode_guardian(g)) for name, g in cards.items()))  # fmt: skip
        self.stamp(version)
        spans = {p.name: [p.start.strftime("%H:%M"), p.end.strftime("%H:%M")] for p in periods}
        self.db.set_meta(PERIODS, json.dumps(spans))

    def guardian_for(self, uid: str) -> Guardian | None:
        name = controls_name(self.key, uid)
        row = self.db.conn.execute("SELECT controls FROM school_controls WHERE entry = ?", (name,)).fetchone()
        return decode_guardian(row[0]) if row else None

    def periods(self) -> tuple[Period, ...]:
        held = self.db.meta(PERIODS)
        spans: dict[str, list[str]] = json.loads(held) if held else {}
        return tuple(Period(name, parse_hhmm(start), parse_hhmm(end)) for name, (start, end) in spans.items())
