"""`vending status|stock|sales|journal`: read-only views of a state dir, as tables, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT, VENDING
from tests.support.reporting import sell

SCENARIO = ROOT / "configs/scenarios/normal-morning.yaml"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("inspect") / "machine"
    assert run_scenario(load_scenario(SCENARIO), where).passed
    return where


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_each_view_matches_the_machine_database_and_never_shows_a_card(state_dir: Path) -> None:
    with sqlite3.connect(state_dir / "machine.db") as db:
        uids = [uid for (uid,) in db.execute("SELECT uid FROM cards")]
        vends = db.execute("SELECT txn_id, price, status FROM vends ORDER BY at, rowid").fetchall()
        slots = db.execute("SELECT slot, stock FROM slots ORDER BY slot").fetchall()
    sales = json.loads(invoke("sales", "--state-dir", str(state_dir), "--json"))
    assert [(s["txn"], s["price"], s["status"]) for s in sales] == vends
    stock = json.loads(invoke("stock", "--state-dir", str(state_dir), "--json"))
    assert [(s["slot"], s["stock"]) for s in stock] == slots
    status = json.loads(invoke("status", "--state-dir", str(state_dir), "--json"))  # one object, snake_case keys
    assert status["sales_completed"] == sum(1 for v in vends if v[2] == "completed")
    assert status["takings"] == sum(v[1] for v in vends if v[2] == "completed")
    everything = "".join(
        invoke(command, "--state-dir", str(state_dir), *form)
        for command in ("status", "stock", "sales", "journal")
        for form in ((), ("--json",), ("--csv",))
    )
    assert not any(uid in everything for uid in uids), "a card number in an inspection view"


def test_an_operator_s_refund_shows_in_the_takings_the_sale_and_the_run_s_summary(tmp_path: Path) -> None:
    """The machine's money check counts takings less operators' refunds; the views said NT$25 kept, no refund."""
    books = tmp_path / "books"
    ran = subprocess.run(
        [VENDING, "run", str(ROOT / "configs/scenarios/operator-refund.yaml"), "--state-dir", str(books), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    summary = events[-1]
    assert (summary["sales"], summary["revenue"], summary["refunds"]) == (1, 25, 0)
    assert (summary["operator_refunds"], summary["operator_refunded"]) == (1, 25)
    sale = [e for e in events if e["event"] == "vended"][0]
    refund = [e for e in events if e["event"] == "command"][0]
    assert (refund["txn"], refund["amount"]) == (sale["txn"], 25)
    status = json.loads(invoke("status", "--state-dir", str(books), "--json"))
    assert (status["sales_completed"], status["takings"]) == (1, 0)
    assert (status["operator_refunds"], status["operator_refunded"], status["refunds"]) == (1, 25, 0)
    [row] = json.loads(invoke("sales", "--state-dir", str(books), "--json"))
    assert (row["txn"], row["price"], row["status"], row["refunded"]) == (sale["txn"], 25, "completed", 25)


def test_csv_has_a_header_and_a_row_per_record_and_filters_apply(state_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("sales", "--state-dir", str(state_dir), "--csv"))))
    assert rows and set(rows[0]) == {"time", "txn", "slot", "product", "price", "status", "refunded"}
    day = rows[0]["time"][:10]
    assert len(json.loads(invoke("sales", "--state-dir", str(state_dir), "--day", day, "--json"))) == len(rows)
    assert json.loads(invoke("sales", "--state-dir", str(state_dir), "--day", "2020-01-01", "--json")) == []
    empty = invoke("sales", "--state-dir", str(state_dir), "--day", "2020-01-01", "--csv")
    header = "time,txn,slot,product,price,status,refunded"
    assert empty.splitlines() == [header], "a day without sales is a header, not 'none'"
    entries = json.loads(invoke("journal", "--state-dir", str(state_dir), "--json"))
    later = json.loads(invoke("journal", "--state-dir", str(state_dir), "--since", entries[-1]["time"], "--json"))
    assert later and later[-1] == entries[-1] and len(later) < len(entries)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["stock", "--state-dir", "/nonexistent"], "no machine.db here"),
        (["sales", "--day", "yesterday"], "--day: expected YYYY-MM-DD"),
        (["journal", "--since", "noon"], "--since: expected an ISO time"),
        (["status", "--json", "--csv"], "choose one"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(state_dir: Path, args: list[str], reason: str) -> None:
    if "--state-dir" not in args:
        args = [*args, "--state-dir", str(state_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and reason in result.output


def test_inspection_reads_a_running_machine_and_writes_nothing(tmp_path: Path, closing) -> None:
    runner = closing(ScenarioRunner(load_scenario(SCENARIO), tmp_path / "machine"))
    runner.start()
    sell(runner, "A1", "lin")
    with runner.machine.db.atomic("journal"):  # the controller in the middle of a write transaction
        stock = json.loads(invoke("stock", "--state-dir", str(tmp_path / "machine"), "--json"))
    assert {s["slot"]: s["stock"] for s in stock}["A1"] == 7
    sell(runner, "A1", "lin")
    stock = json.loads(invoke("stock", "--state-dir", str(tmp_path / "machine"), "--json"))
    assert {s["slot"]: s["stock"] for s in stock}["A1"] == 6, "the last committed state, while it runs"

    def files() -> dict[str, bytes]:
        return {
            p.name: p.read_bytes() for p in (tmp_path / "machine").glob("machine.db*") if p.name != "machine.db-shm"
        }

    before = files()
    for command in ("status", "stock", "sales", "journal"):
        invoke(command, "--state-dir", str(tmp_path / "machine"))
    assert files() == before, "inspection wrote to the machine's database"


def test_times_show_in_the_machine_s_local_time_when_its_clock_stored_utc(tmp_path: Path) -> None:
    """`vending serve` runs on the system clock, which stores UTC: 23:30 UTC on 1 March is 07:30, 2 March, Taipei."""
    from dataclasses import replace
    from datetime import UTC

    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")
    utc_start = scenario.start.astimezone(UTC)
    runner = ScenarioRunner(replace(scenario, start=utc_start, steps=()), tmp_path / "state")
    runner.start()
    try:
        sell(runner, "A1", "amy")
    finally:
        runner.close()
    rows = json.loads(invoke("sales", "--state-dir", str(tmp_path / "state"), "--json"))
    assert [row["time"][:16] for row in rows] == ["2026-03-02T07:30"] and rows[0]["time"].endswith("+08:00")
    entries = json.loads(invoke("journal", "--state-dir", str(tmp_path / "state"), "--since", "2026-03-02", "--json"))
    assert {"vend_completed"} <= {entry["kind"] for entry in entries}, "the local day, not the UTC one"


def test_json_has_real_types_an_object_per_record_and_csv_is_a_flag_to_stdout(state_dir: Path) -> None:
    stock = json.loads(invoke("stock", "--state-dir", str(state_dir), "--json"))
    assert all(isinstance(row["enabled"], bool) and isinstance(row["stock"], int) for row in stock)
    entries = json.loads(invoke("journal", "--state-dir", str(state_dir), "--json"))
    assert all(isinstance(entry["data"], dict) for entry in entries), "data is an object, not JSON in a string"
    status = json.loads(invoke("status", "--state-dir", str(state_dir), "--json"))
    assert isinstance(status, dict) and all(key == key.lower() and " " not in key for key in status)
    assert isinstance(status["takings"], int) and isinstance(status["cards_known"], int)
    rows = list(csv.DictReader(io.StringIO(invoke("status", "--state-dir", str(state_dir), "--csv"))))
    assert len(rows) == 1 and rows[0]["machine"] == status["machine"]
