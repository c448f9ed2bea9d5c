"""Storage layouts for the vend, each measured against the machine's own database.

Each arm lays the machine's state database out differently before the firmware first opens it, as a
state dir made by another version would be: the firmware's ``CREATE TABLE IF NOT EXISTS`` leaves the
arm's table (and ``PRAGMA page_size`` the arm's pages) as it finds them, so the vends run the
firmware's own statements, unchanged, on the other layout. After its run each arm's database is checked
to still hold its layout; a run that lost it is refused, not reported.

Every round runs each arm on a fresh machine (``--vends`` full vends, reporter on, on the disk), the
machine's own layout first; an arm's figure is its vends/s over that round's own-layout vends/s, so the
box's drift between rounds cancels (``interleaved``'s method, with more than two sides). Each arm's
vends also give the target's own share, vends/s over raw commits/s ÷ 2, the raw commits measured just
before on a database with the arm's settings (a machine with 1 KiB pages has a raw commit of 1 KiB pages
too), and that share over the round's own share. Beside it: the
WAL frames a vend writes and the CPU a vend takes in the process (user and system), and the same vends
on a RAM disk, where no commit waits for the disk, so that the CPU the waits add shows.
Run: .venv/bin/python bench/vend_levers.py [--vends N] [--rounds R] [--ram DIR]
"""

from __future__ import annotations

import os
import re
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROUNDS, merge_results, raw_commit_samples, spread, vends_on_ram_arguments  # noqa: E402
from bench.durability import Vending  # noqa: E402
from bench.vend_sql import wal_frames  # noqa: E402
from firmware.app.node import DB_FILE  # noqa: E402
from firmware.identity.secretfile import PRIVATE_FILE, private_dir  # noqa: E402
from firmware.journal.database import SCHEMA  # noqa: E402
from firmware.journal.owner import OWNERS  # noqa: E402

FRAME_VENDS = 500  # vends whose WAL frames are counted, after the timed ones


class Arm(NamedTuple):
    """One layout of the machine's database, made on an empty file and held while ``holds`` answers a row.

    ``settings`` (a pragma) is the machine's database's settings, so the raw commit the vends are held
    against gets it too; ``table`` is one of the machine's tables made otherwise.
    """

    changes: str
    settings: str
    table: str
    holds: str


def firmware_table(name: str) -> str:
    """The firmware's own ``CREATE TABLE`` for ``name`` (firmware/journal/database.py), as the text it runs."""
    found = re.search(rf"CREATE TABLE IF NOT EXISTS {name} \(.*?\n\);", SCHEMA, re.DOTALL)
    if found is None:
        raise LookupError(f"the machine's schema has no table {name!r}")
    return found.group(0).removesuffix(";")


def rewritten(text: str, *changes: tuple[str, str]) -> str:
    """``text`` with each (old, new) replaced; an old part it no longer holds is an arm that no longer applies."""
    for old, new in changes:
        if old not in text:
            raise LookupError(f"the machine's schema no longer holds {old!r}: this arm needs revising")
        text = text.replace(old, new)
    return text


OWN = "the machine's own"
ARMS: dict[str, Arm] = {
    OWN: Arm("nothing: the firmware makes the database", "", "", "SELECT 1"),
    "1 KiB pages": Arm(
        "SQLite pages of 1,024 bytes, not 4,096: a quarter of the bytes written and checksummed per WAL frame",
        "PRAGMA page_size=1024",
        "",
        "SELECT 1 FROM pragma_page_size WHERE page_size = 1024",
    ),
    "outbox clustered": Arm(
        "the outbox stored in (stream, seq) order (WITHOUT ROWID): no separate unique index to write",
        "",
        rewritten(
            firmware_table("outbox"),
            ("id INTEGER PRIMARY KEY, ", ""),
            ("UNIQUE (stream, seq)", "PRIMARY KEY (stream, seq)"),
        )
        + " WITHOUT ROWID",
        "SELECT 1 FROM sqlite_schema WHERE name = 'outbox' AND sql LIKE '%WITHOUT ROWID'",
    ),
    "vends clustered": Arm(
        "the vends stored in txn_id order (WITHOUT ROWID): no separate primary-key index to write",
        "",
        firmware_table("vends") + " WITHOUT ROWID",
        "SELECT 1 FROM sqlite_schema WHERE name = 'vends' AND sql LIKE '%WITHOUT ROWID'",
    ),
}


def lay_out(directory: Path, arm: Arm) -> None:
    """The machine's state database as ``arm`` makes it, in WAL mode as the firmware keeps it, before the
    firmware first opens it."""
    state = private_dir(directory / "machine")
    os.close(os.open(state / DB_FILE, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))  # as the firmware makes it
    conn = sqlite3.connect(state / DB_FILE, isolation_level=None)
    if arm.settings:
        conn.execute(arm.settings)  # before journal_mode: WAL fixes the page size with the file's first page
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA application_id = {OWNERS['machine']}")  # a machine's file, as the firmware stamps it
    if arm.table:
        conn.execute(arm.table)
    conn.close()


def run_arm(directory: Path, arm: Arm, vends: int, frame_vends: int = FRAME_VENDS) -> dict[str, float]:
    """``vends`` full vends on a fresh machine laid out by ``arm``: vends/s, CPU µs a vend; then the WAL
    frames a vend writes, over ``frame_vends`` more."""
    lay_out(directory, arm)
    vending = Vending(directory, publish=False)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    vending.vend_many(vends)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    conn = vending.machine.db.conn
    frames = wal_frames(conn, lambda: vending.vend_many(frame_vends))
    kept = conn.execute(arm.holds).fetchone() is not None
    vending.close()
    if not kept:
        raise RuntimeError(f"{arm.changes}: the machine's database lost this layout; nothing measured")
    return {
        "vends_per_s": vends / elapsed,
        "user_us": (after.ru_utime - before.ru_utime) / vends * 1e6,
        "sys_us": (after.ru_stime - before.ru_stime) / vends * 1e6,
        "frames_per_vend": frames / frame_vends,
    }


def measure(vends: int, rounds: int, ram: Path) -> dict[str, Any]:
    """Every arm on the disk, each after the raw commits its settings give, and the machine's own on ``ram``;
    round after round, each round's own layout first."""
    if rounds < ROUNDS:
        raise ValueError(f"at least {ROUNDS} rounds, got {rounds}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ARMS}
    on_ram: list[dict[str, float]] = []
    for _ in range(rounds):
        for name, arm in ARMS.items():
            with tempfile.TemporaryDirectory(prefix="bench-levers-") as tmp:
                raw_pairs = vends / sum(raw_commit_samples(Path(tmp), 2 * vends, arm.settings))  # raw commits/s ÷ 2
                run = run_arm(Path(tmp), arm, vends)
            runs[name].append({**run, "share": run["vends_per_s"] / raw_pairs})
        with tempfile.TemporaryDirectory(prefix="bench-levers-ram-", dir=ram) as tmp:
            on_ram.append(run_arm(Path(tmp), ARMS[OWN], vends))
    own = runs[OWN]

    def figures(measured: list[dict[str, float]]) -> dict[str, Any]:
        return {key: spread([run[key] for run in measured], 3 if key == "share" else 1) for key in measured[0]}

    def over_own(measured: list[dict[str, float]], key: str) -> dict[str, Any]:
        return spread([run[key] / mine[key] for run, mine in zip(measured, own, strict=True)])

    arms = {
        name: {
            "changes": ARMS[name].changes,
            **figures(measured),
            "ratio": over_own(measured, "vends_per_s"),
            "share_ratio": over_own(measured, "share"),
        }
        for name, measured in runs.items()
    }
    return {"vends": vends, "own": OWN, "arms": arms, "ram": figures(on_ram)}


def main() -> None:
    args, ram = vends_on_ram_arguments(__doc__, 10000)
    results = measure(args.vends, args.rounds, ram)
    merge_results("vend_levers", results)
    for name, arm in results["arms"].items():
        print(
            f"{name}: {arm['vends_per_s']['median']:,.0f} vends/s, x{arm['ratio']['median']:.3f} the machine's own; "
            f"share {arm['share']['median']:.3f}, x{arm['share_ratio']['median']:.3f} the machine's own; "
            f"{arm['frames_per_vend']['median']:.1f} WAL frames, CPU {arm['user_us']['median']:.0f} user + "
            f"{arm['sys_us']['median']:.0f} system µs a vend"
        )
    ram = results["ram"]
    print(f"on a RAM disk: CPU {ram['user_us']['median']:.0f} user + {ram['sys_us']['median']:.0f} system µs a vend")


if __name__ == "__main__":
    main()
