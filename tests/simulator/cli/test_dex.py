"""`vending export dex`: an EVA-DTS audit file whose CRC, segment count and totals a DEX reader accepts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from firmware.journal.dex import crc16_arc
from simulator.cli import app
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import sell


def dex(state_dir: Path, *args: str) -> list[list[str]]:
    out = state_dir.parent / "audit.dex"
    result = CliRunner().invoke(app, ["export", "dex", "--state-dir", str(state_dir), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    text = out.read_bytes().decode("ascii")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "every line ends in CRLF"
    lines = text.split("\r\n")[:-1]
    check_envelope(lines)
    return [line.split("*") for line in lines]


def check_envelope(lines: list[str]) -> None:
    """What a DEX reader checks before it trusts the counters."""
    assert lines[0].startswith("DXS*") and lines[-1] == "DXE*1*1" and lines[1] == "ST*001*0001"
    g85 = next(i for i, line in enumerate(lines) if line.startswith("G85*"))
    expected = crc16_arc("".join(line + "\r\n" for line in lines[1:g85]).encode("ascii"))
    assert lines[g85] == f"G85*{expected:04X}", "the CRC covers ST to the line before G85"
    se = lines[-2].split("*")
    assert se[0] == "SE" and int(se[1]) == len(lines) - 2 and se[2] == "0001", "SE counts ST..SE"


def segments(parsed: list[list[str]], name: str) -> list[list[str]]:
    return [fields for fields in parsed if fields[0] == name]


def test_the_crc_is_crc16_arc() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D  # the catalogue's check value for CRC-16/ARC


def test_totals_match_the_books_and_every_selection_adds_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "m"
    assert run_scenario(load_scenario(ROOT / "configs/scenarios/jam-and-refund.yaml"), state_dir).passed
    with sqlite3.connect(state_dir / "machine.db") as db:
        value, count = db.execute("SELECT SUM(price), COUNT(*) FROM vends WHERE status = 'completed'").fetchone()
        jams = db.execute("SELECT COUNT(*) FROM journal WHERE kind = 'vend_refunded'").fetchone()[0]
        slots = [slot for (slot,) in db.execute("SELECT slot FROM slots ORDER BY slot")]
    parsed = dex(state_dir)
    (va1,) = segments(parsed, "VA1")
    assert [int(v) for v in va1[1:]] == [value, count, value, count], "one day: since init == since reset"
    assert segments(parsed, "DA2") == [["DA2", *va1[1:]]], "every sale here is cashless"
    assert [fields[1] for fields in segments(parsed, "PA1")] == slots
    pa2 = [[int(v) for v in fields[1:]] for fields in segments(parsed, "PA2")]
    assert sum(p[0] for p in pa2) == count and sum(p[1] for p in pa2) == value
    assert sum(1 for fields in segments(parsed, "EA1") if fields[1] == "EJJ") == jams > 0, "each jam, as an event"
    assert ["EA2", "EJJ", str(jams), str(jams)] in segments(parsed, "EA2")


def test_interval_and_cumulative_counters_over_two_days(tmp_path: Path, closing) -> None:
    runner = closing(ScenarioRunner(load_scenario(ROOT / "configs/scenarios/normal-morning.yaml"), tmp_path / "m"))
    runner.start()
    first = runner.clock.now().date().isoformat()
    sell(runner, "A1", "lin")
    sell(runner, "E1", "lin")
    runner.clock.advance(timedelta(days=1))
    second = runner.clock.now().date().isoformat()
    sell(runner, "A1", "lin")
    runner.machine.controller.door_open()
    runner.machine.controller.door_close()
    with sqlite3.connect(tmp_path / "m" / "machine.db") as db:
        prices = dict(db.execute("SELECT slot, price FROM slots"))
    day_one = dex(tmp_path / "m", "--day", first)
    day_two = dex(tmp_path / "m", "--day", second)
    one = prices["A1"] + prices["E1"]
    assert segments(day_one, "VA1")[0][1:] == [str(one), "2", str(one), "2"]
    assert segments(day_two, "VA1")[0][1:] == [str(one + prices["A1"]), "3", str(prices["A1"]), "1"]
    a1 = day_two[[f[:2] for f in day_two].index(["PA1", "A1"]) + 1]
    assert a1 == ["PA2", "2", str(2 * prices["A1"]), "1", str(prices["A1"])]
    assert [f[1] for f in segments(day_two, "EA1")] == ["EGS"] and segments(day_one, "EA1") == []


def test_a_missing_state_dir_and_a_bad_day_are_refused(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["export", "dex", "--state-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "no machine.db here" in missing.output
    bad = CliRunner().invoke(app, ["export", "dex", "--state-dir", str(tmp_path), "--day", "Monday"])
    assert bad.exit_code == 2 and "--day: expected YYYY-MM-DD" in bad.output


def test_an_out_file_that_cannot_be_written_is_named_with_its_option(tmp_path: Path) -> None:
    state_dir = tmp_path / "m"
    assert run_scenario(load_scenario(ROOT / "configs/scenarios/normal-morning.yaml"), state_dir).passed
    nowhere = tmp_path / "no-such-dir" / "audit.dex"
    result = CliRunner().invoke(app, ["export", "dex", "--state-dir", str(state_dir), "--out", str(nowhere)])
    assert result.exit_code == 2 and f"--out {nowhere}: {nowhere.parent} is not a directory" in result.output
    assert not nowhere.parent.exists()
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "audit.dex").symlink_to(target)  # the file was written through the link, to its target
    export = ["export", "dex", "--state-dir", str(state_dir), "--out"]
    linked = CliRunner().invoke(app, [*export, str(tmp_path / "audit.dex")])
    assert linked.exit_code == 2 and "is a symlink; nothing is written through one" in linked.output, linked.output
    assert target.read_text() == "keep me"
    again = tmp_path / "again.dex"
    for _ in range(2):  # an export file of its own is replaced whole by the next export
        assert CliRunner().invoke(app, [*export, str(again)]).exit_code == 0
    assert again.read_text().startswith("DXS*")
