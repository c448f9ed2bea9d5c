"""Remote command ids already answered, so a command delivered twice (QoS 1) is applied once."""

from __future__ import annotations

import json
from typing import Any

from firmware.journal.database import Database


class CommandLog:
    """The ``commands`` table; writes join the caller's journal transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def previous(self, command_id: str) -> dict[str, Any] | None:
        """The answer already given to ``command_id``, if any."""
        row = self.db.conn.execute("SELECT result FROM commands WHERE id = ?", (command_id,)).fetchone()
        if row is None:
            return None
        result: dict[str, Any] = json.loads(row[0])
        return result

    def remember(self, command_id: str, name: str, result: dict[str, Any], at: str) -> None:
        self.db.conn.execute(
            "INSERT OR IGNORE INTO commands (id, name, result, at) VALUES (?, ?, ?, ?)",
            (command_id, name, json.dumps(result), at),
        )

    def prune(self, before: str) -> int:
        """Forget answers older than ``before`` (ISO time): a command that old has long expired anyway."""
        return self.db.conn.execute("DELETE FROM commands WHERE at < ?", (before,)).rowcount
