"""The school's side of the guardian controls: what each guardian decided, the school's periods, the pushes.

A guardian's decision (through the school's office or its parent app) is kept here by student, with
every change a new version; publishing sends every controlled card's controls as one document,
signed by the school and sealed with the key it shares with its machines, retained on the school's
topic (firmware/reporting/controls.py). The roster says which card is whose: only the school can.
A student with no decision on record is not in the push, and a machine keeps its local controls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from firmware.config.controls import GuardianControls, parse_periods
from firmware.config.source import error_text
from firmware.domain import SCHOOL_CODE, SCHOOL_CODE_RULE
from firmware.errors import VendingError
from firmware.identity.pseudonym import controls_name
from firmware.identity.signing import Identity
from firmware.reporting import controls
from simulator.backends.schemas import signer_schema
from simulator.backends.signer import check as check_signer
from simulator.school.store import SchoolStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS guardian_controls (student TEXT PRIMARY KEY, controls TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS school_periods (name TEXT PRIMARY KEY, start TEXT NOT NULL, "end" TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS controls_versions (
    version INTEGER PRIMARY KEY, at TEXT NOT NULL, what TEXT NOT NULL
);
-- the school code the pushes go to (school/v1/<code>/controls): the first push's, held to after it
CREATE TABLE IF NOT EXISTS school_code (code TEXT NOT NULL);
-- what each version's push carried (a digest): the same version never carries two different lists
CREATE TABLE IF NOT EXISTS controls_pushed (version INTEGER PRIMARY KEY, digest TEXT NOT NULL);
""" + signer_schema("school")
# the school day as many Taiwanese schools divide it; `vending school controls periods` sets the school's own
DEFAULT_PERIODS = {
    "breakfast": {"from": "07:00", "to": "08:00"},
    "morning_recess": {"from": "09:50", "to": "10:10"},
    "lunch": {"from": "12:00", "to": "13:30"},
    "after_school": {"from": "16:00", "to": "18:00"},
}


class ControlsError(VendingError):
    """A guardian's decision or a period the school's tool refuses; nothing was changed."""


class SchoolControls:
    """The guardians' decisions and the school's periods on the school's database, pushed signed by ``signer``.

    ``signer`` must be the school key these controls are kept under (the first that signed here,
    simulator/backends/signer.py): a change is refused in its own transaction otherwise, since every
    machine would refuse its push while the school's records said the guardian's decision holds.
    Without one the controls are only read (``vending school controls show``).
    """

    def __init__(self, store: SchoolStore, signer: Identity | None = None) -> None:
        self.store = store
        self.signer = signer
        self.conn = store.conn
        self.conn.executescript(SCHEMA)

    def periods(self) -> dict[str, dict[str, str]]:
        rows = self.conn.execute('SELECT name, start, "end" FROM school_periods ORDER BY start').fetchall()
        return {name: {"from": start, "to": end} for name, start, end in rows} if rows else dict(DEFAULT_PERIODS)

    def set_periods(self, periods: dict[str, dict[str, str]], at: datetime) -> int:
        """The school's periods of the day, replaced whole; a new version (the next push carries them)."""
        try:
            checked = parse_periods(periods)
        except ValueError as exc:
            raise ControlsError(f"--period: {exc}") from None
        names = {period.name for period in checked}
        for student, current in self.decisions().items():
            if stray := [name for name in current.get("period_limits", {}) if name not in names]:
                raise ControlsError(f"--period: student {student} has a limit for period {stray[0]!r}; keep it")
        return self._change("periods", lambda: self._write_periods(periods))

    def _write_periods(self, periods: dict[str, dict[str, str]]) -> None:
        self.conn.execute("DELETE FROM school_periods")
        self.conn.executemany('INSERT INTO school_periods (name, start, "end") VALUES (?, ?, ?)',
                              [(name, spec["from"], spec["to"]) for name, spec in periods.items()])  # fmt: skip

    def decisions(self) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute("SELECT student, controls FROM guardian_controls ORDER BY student")
        return {student: json.loads(text) for student, text in rows}

    def decide(self, student: str, changes: dict[str, Any], at: datetime, *, clear: bool = False) -> int:
        """Change a student's controls (fields not given stay, from the roster's at first); a new version."""
        who = self.store.student(student)
        base = {"linked": who.linked, "daily_limit": who.daily_limit}
        current = {} if clear else self.decisions().get(student, base)
        wanted = current | changes
        try:
            checked = GuardianControls.model_validate(wanted)
        except ValidationError as exc:
            raise ControlsError(f"controls of {student}: {error_text(exc)}") from None
        if stray := [name for name in checked.period_limits if name not in self.periods()]:
            raise ControlsError(f"--period-limit: {stray[0]!r} is not one of the school's periods "
                                f"({', '.join(self.periods())})")  # fmt: skip
        text = json.dumps(checked.model_dump(mode="json"), sort_keys=True)

        def write() -> None:
            self.conn.execute("INSERT OR REPLACE INTO guardian_controls (student, controls, at) VALUES (?, ?, ?)",
                              (student, text, at.isoformat()))  # fmt: skip

        return self._change(f"student {student}", write)

    def _change(self, what: str, write: Callable[[], None]) -> int:
        def changed() -> None:
            write()
            self.conn.execute("INSERT INTO controls_versions (version, at, what) VALUES (?, datetime('now'), ?)",
                              (self.version() + 1, what))  # fmt: skip

        self._signed(changed)
        return self.version()

    def _signed(self, write: Callable[[], None]) -> None:
        """``write`` in one transaction with the signer's check: a key that is not the school's changes nothing."""
        if self.signer is None:
            raise ControlsError("the school's controls are changed and pushed only under the school's key (--keys)")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            check_signer(self.conn, self.signer, "--keys")
            write()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def pin_school(self, code: str) -> None:
        """The school code the pushes go to: the first push's, and every push's after it.

        A mistyped ``--school`` pushed every guardian's decision to a topic no machine reads, while the
        school's records said the decisions held; the machines kept their old controls.
        """
        if not SCHOOL_CODE.fullmatch(code):
            raise ControlsError(f"--school {code!r}: a school code is {SCHOOL_CODE_RULE}, as the machines' configs "
                                "have it")  # fmt: skip

        def pinned() -> None:
            row = self.conn.execute("SELECT code FROM school_code").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO school_code (code) VALUES (?)", (code,))
            elif row[0] != code:
                raise ControlsError(f"--school {code}: this school's controls go to school {row[0]} (its pushes so "
                                    "far); a push to another code reaches none of its machines")  # fmt: skip

        self._signed(pinned)

    def _forget(self, students: list[str]) -> None:
        self.conn.executemany("DELETE FROM guardian_controls WHERE student = ?", ((student,) for student in students))

    def _pushed(self, version: int) -> str | None:
        row = self.conn.execute("SELECT digest FROM controls_pushed WHERE version = ?", (version,)).fetchone()
        return str(row[0]) if row else None

    def version(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM controls_versions").fetchone()[0])

    def message(self, school: str, key: bytes, now: datetime, valid_hours: int) -> tuple[str, str, bool]:
        """``(topic, payload, retain)``: every decision on record, by card name, with the school's periods.

        The roster moves on under the decisions: a student who left takes their decision along (every
        push failed on them, for everyone), and a new card gets its holder's. Either changes what is
        pushed, so it is a new version: a machine takes only a newer one.
        """
        self._signed(lambda: None)  # a push again under another key is refused too, before anything is sent
        if left := [student for student in self.decisions() if not self.store.on_roster(student)]:
            self._change(f"left the roster: {', '.join(left[:5])}", lambda: self._forget(left))
        cards = {controls_name(key, self.store.student(s).card_uid): d for s, d in self.decisions().items()}
        periods = self.periods()
        digest = hashlib.sha256(json.dumps([cards, periods], sort_keys=True).encode()).hexdigest()
        version = self.version()
        if self._pushed(version) not in (None, digest) or not version:  # a machine holds none: version 0
            version = self._change("a card changed on the roster" if version else "first push", lambda: None)
        self.conn.execute("INSERT OR IGNORE INTO controls_pushed (version, digest) VALUES (?, ?)", (version, digest))
        expires = now + timedelta(hours=valid_hours)
        assert self.signer is not None  # checked by _signed above
        payload = controls.compose(self.signer, key, version, now, expires, periods, cards)
        return controls.topic(school), payload, True
