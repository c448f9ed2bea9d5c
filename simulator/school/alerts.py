"""The guardian alerts the school backend stored, with the student each is about: the school's eyes only.

An alert names the card as the school's controls do (``controls_name``); the school computes that name
for every card on its roster with its controls key, and so finds the student. Nobody else holds both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from firmware.errors import VendingError
from firmware.identity.keyset import CONTROLS, read_shared_key
from firmware.identity.pseudonym import controls_name
from firmware.journal.owner import reading


def alerts_by_student(db: Path, keys: Path, day: str | None = None) -> list[dict[str, Any]]:
    key = read_shared_key(keys, CONTROLS)
    if key is None:
        raise VendingError(f"--keys {keys}: no controls.key (`vending keys dev-set` writes one with the school's keys)")
    if not db.is_file():
        raise VendingError(f"--db {db}: no such file (`vending backend school` makes it)")
    with reading(db, "school") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "guardian_alerts" not in tables:
            return []
        roster = dict(conn.execute("SELECT card_uid, student FROM students")) if "students" in tables else {}
        who = {controls_name(key, uid): student for uid, student in roster.items()}
        sql = "SELECT machine, seq, card, alert, day, facts FROM guardian_alerts WHERE ? IS NULL OR day = ?"
        rows = conn.execute(sql + " ORDER BY day, rowid", (day, day)).fetchall()
    return [
        {"student": who.get(card, "(not on the roster)"), "machine": machine, "seq": seq, "alert": alert, "day": d}
        | json.loads(facts)
        for machine, seq, card, alert, d, facts in rows
    ]
