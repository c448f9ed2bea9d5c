"""What a machine holds of an authority's push (a lost-card list, guardian controls, pending credits).

Each book keeps the version it applied in the books' ``meta``, replaced in the commit that applies a newer
one, so a replayed or older push is told apart after any restart (firmware/reporting/pushed.py).
"""

from __future__ import annotations

from typing import ClassVar

from firmware.journal.database import Database


class HeldPush:
    version_key: ClassVar[str]  # the meta key of the version applied

    def __init__(self, db: Database) -> None:
        self.db = db

    def version(self) -> int:
        held = self.db.meta(self.version_key)
        return int(held) if held else 0

    def stamp(self, version: int) -> None:
        """The version applied (joins the current transaction)."""
        self.db.set_meta(self.version_key, str(version))
