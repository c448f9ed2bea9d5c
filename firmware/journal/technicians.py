"""Route technicians' cards on the machine: recognised by their keyed name, never by a stored card number.

At a technician's tap the machine writes the day's DEX audit (firmware/journal/dex.py) into its DEX
directory, the file a route driver's handheld collects from the DEX port; the pick list and the refill
are the controller's (firmware/controller/service.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from firmware.identity.pseudonym import technician_name
from firmware.identity.secretfile import private_dir
from firmware.journal.database import Database
from firmware.journal.dex import audit_from, render


class TechnicianDesk:
    """Implements the ``Technicians`` port."""

    def __init__(self, db: Database, key: bytes, names: Iterable[str], dex_dir: Path, zone: ZoneInfo,
                 location: str = "", currency: str = "TWD") -> None:  # fmt: skip
        self.db = db
        self.key = key
        self.names = frozenset(names)
        self.dex_dir = dex_dir
        self.zone = zone
        self.location = location
        self.currency = currency

    def recognises(self, uid: str) -> bool:
        return technician_name(self.key, uid) in self.names

    def export_audit(self, at: datetime) -> str:
        local = at.astimezone(self.zone)
        text = render(audit_from(self.db.conn, local.date().isoformat(), local, self.location, self.currency))
        private_dir(self.dex_dir)
        path = self.dex_dir / f"{local:%Y%m%dT%H%M%S}.dex"
        path.write_text(text, newline="")
        return path.name
