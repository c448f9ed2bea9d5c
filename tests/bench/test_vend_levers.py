"""bench/vend_levers.py: each arm's layout is the one the firmware's vends then run on, or nothing is reported."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bench.common import ram_disk
from bench.vend_levers import ARMS, OWN, Arm, firmware_table, lay_out, measure, rewritten, run_arm
from firmware.app.node import DB_FILE


@pytest.mark.parametrize("name", list(ARMS))
def test_each_arm_s_vends_run_on_its_own_layout(tmp_path: Path, name: str) -> None:
    figures = run_arm(tmp_path, ARMS[name], vends=5, frame_vends=5)
    assert figures["vends_per_s"] > 0 and figures["frames_per_vend"] > 0
    with closing(sqlite3.connect(tmp_path / "machine" / DB_FILE)) as conn:
        assert conn.execute(ARMS[name].holds).fetchone() is not None
        sold = conn.execute("SELECT COUNT(*) FROM vends WHERE status = 'completed'").fetchone()[0]
    assert sold == 10, "the firmware's own statements sold on the arm's tables"


def test_the_machine_s_own_layout_is_not_clustered(tmp_path: Path) -> None:
    """The arms' checks can say no: the firmware's own tables answer none of them."""
    run_arm(tmp_path, ARMS[OWN], vends=1, frame_vends=1)
    with closing(sqlite3.connect(tmp_path / "machine" / DB_FILE)) as conn:
        assert all(conn.execute(arm.holds).fetchone() is None for name, arm in ARMS.items() if name != OWN)


def test_a_layout_the_database_does_not_hold_is_refused_not_reported(tmp_path: Path) -> None:
    holds = ARMS["vends clustered"].holds.replace("'vends'", "'journal'")
    journal_clustered = Arm("a check the firmware's journal never meets", "", "", holds)
    with pytest.raises(RuntimeError, match="lost this layout"):
        run_arm(tmp_path, journal_clustered, vends=1, frame_vends=1)


def test_a_layout_is_made_before_the_firmware_opens_the_file(tmp_path: Path) -> None:
    lay_out(tmp_path, ARMS["1 KiB pages"])
    with closing(sqlite3.connect(tmp_path / "machine" / DB_FILE)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 1024
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_fewer_rounds_than_the_method_needs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        measure(10, 2, tmp_path)


def test_the_clustered_tables_are_the_firmware_s_own_with_another_key() -> None:
    assert ARMS["vends clustered"].table == firmware_table("vends") + " WITHOUT ROWID"
    outbox = ARMS["outbox clustered"].table
    assert "id INTEGER" not in outbox, "no rowid column: (stream, seq) is the key"
    as_the_firmware_keys_it = outbox.replace("PRIMARY KEY (stream, seq)\n) WITHOUT ROWID", "UNIQUE (stream, seq)\n)")
    assert as_the_firmware_keys_it == firmware_table("outbox").replace("id INTEGER PRIMARY KEY, ", "")


def test_an_arm_whose_schema_text_is_gone_says_so() -> None:
    with pytest.raises(LookupError, match="no table"):
        firmware_table("no_such_table")
    with pytest.raises(LookupError, match="needs revising"):
        rewritten("CREATE TABLE t (a)", ("b", "c"))


def test_a_ram_disk_that_is_not_there_stops_the_measurement_saying_so(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"--ram .*none: no such directory; this measurement needs a RAM disk"):
        ram_disk(tmp_path / "none")
    assert ram_disk(tmp_path) == tmp_path
