"""A scenario written for one test: one staff card, the steps given, and the times its vends were booked."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from tests.conftest import DEMO_MACHINE


def write_story(path: Path, steps: str, start: str, machine: Path = DEMO_MACHINE) -> Path:
    """``path`` holding a scenario on ``machine`` from ``start`` with card ``lin`` (staff, NT$300) and ``steps``."""
    path.write_text(f"""machine: {machine}
start: "{start}"
cards:
  lin: {{uid: "0499887766AA01", profile: staff, balance: 300}}
steps:
{steps}""")
    return path


def vend_times(state_dir: Path) -> list[datetime]:
    """When each vend of the machine in ``state_dir`` was booked, in order."""
    with sqlite3.connect(state_dir / "machine.db") as conn:
        return [datetime.fromisoformat(at) for (at,) in conn.execute("SELECT at FROM vends ORDER BY rowid")]
