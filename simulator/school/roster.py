"""The school's roster CSV: which card is whose, and what the guardian set. Checked line by line.

Columns (header required, order free): ``student`` and ``card_uid`` always; ``profile`` (student or
staff, default student), ``machine`` (the machine at the student's school, informational), ``school``
(the school's code, as its machines' configs have it; informational, checked like them),
``linked`` (true/false: may the card pay; default true), ``daily_limit`` (TWD, empty for none).
A bad line is refused with its line number and nothing is imported; so is a roster with no student,
since an import replaces the roster whole.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from firmware.domain import CARD_UID, CARD_UID_RULE, SCHOOL_CODE, SCHOOL_CODE_RULE, WHOLE_NUMBER
from firmware.errors import VendingError
from firmware.files import read_capped
from firmware.identity.pseudonym import normalise_uid

REQUIRED = ("student", "card_uid")
OPTIONAL = ("profile", "machine", "linked", "daily_limit", "school")
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
ROSTER_BYTES = 64 * 1024 * 1024  # a district's students, a few dozen bytes each
BOOLEAN = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": True}


class RosterError(VendingError):
    """A roster file that cannot be imported; the message names the file, line and field."""


@dataclass(frozen=True)
class Student:
    student: str
    card_uid: str
    profile: str = "student"
    machine: str = ""
    linked: bool = True
    daily_limit: int | None = None


def load_roster(path: Path) -> list[Student]:
    """Every row of ``path``, or ``RosterError`` for the first bad one."""
    try:
        text = read_capped(path, ROSTER_BYTES).decode("utf-8-sig")
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the roster: {exc.strerror or exc.__class__.__name__}") from None
    except UnicodeDecodeError:
        raise RosterError(f"{path}: cannot read the roster: not UTF-8 text") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise RosterError(f"{path}: line 1: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if unknown:
        raise RosterError(f"{path}: line 1: unknown column {unknown[0]!r} (known: {', '.join(REQUIRED + OPTIONAL)})")
    students: list[Student] = []
    seen_students: set[str] = set()
    seen_cards: set[str] = set()
    for line, row in enumerate(reader, start=2):
        student = _row(path, line, row)
        if student.student in seen_students:
            raise RosterError(f"{path}: line {line}: student: {student.student!r} appears twice")
        if student.card_uid in seen_cards:
            raise RosterError(f"{path}: line {line}: card_uid: the card appears twice")  # never echo a uid
        seen_students.add(student.student)
        seen_cards.add(student.card_uid)
        students.append(student)
    if not students:  # importing replaces the roster: a header alone would take every student off it
        raise RosterError(f"{path}: line 1: no student after the header; an empty roster is not imported")
    return students


def _row(path: Path, line: int, row: dict[str, str | None]) -> Student:
    def field(name: str) -> str:
        return (row.get(name) or "").strip()

    if None in row:
        raise RosterError(f"{path}: line {line}: more values than columns")
    student, uid = field("student"), normalise_uid(field("card_uid"))
    if not STUDENT_ID.fullmatch(student):
        raise RosterError(f"{path}: line {line}: student: expected 1-40 letters, digits, '.', '_' or '-'")
    if not CARD_UID.fullmatch(uid):
        raise RosterError(f"{path}: line {line}: card_uid: expected {CARD_UID_RULE}")
    if (school := field("school")) and not SCHOOL_CODE.fullmatch(school):
        raise RosterError(f"{path}: line {line}: school: expected {SCHOOL_CODE_RULE}, got {school[:20]!r}")
    profile = field("profile") or "student"
    if profile not in ("student", "staff"):
        raise RosterError(f"{path}: line {line}: profile: expected student or staff, got {profile[:20]!r}")
    linked = BOOLEAN.get(field("linked").lower())
    if linked is None:
        raise RosterError(f"{path}: line {line}: linked: expected true or false")
    limit_text = field("daily_limit")
    if limit_text and (not WHOLE_NUMBER.fullmatch(limit_text) or len(limit_text) > 6):
        raise RosterError(f"{path}: line {line}: daily_limit: expected whole TWD (0-999999) or empty")
    return Student(student, uid, profile, field("machine"), linked, int(limit_text) if limit_text else None)
