"""`vending backend vendor report`: k-anonymous aggregates from a vendor database filled by a real run.

The vendor's pseudonyms name visits, so one child's five visits are five pseudonyms: the report must
bound a cell's buyers from the machines' day summaries, never count pseudonyms.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from firmware.domain import CardTap
from firmware.reporting.reporter import release_window
from simulator.backends.analytics import buyers_at_least
from simulator.cli import app
from simulator.scenarios.reporting_world import ReportingWorld
from tests.support.reporting import attached_runner

TAIPEI = ZoneInfo("Asia/Taipei")


def _buy(runner, card: str, slot: str) -> None:
    runner.machine.controller.dispatch("select", slot)
    runner.machine.controller.present(CardTap(runner.scenario.cards[card].uid, "virtual", runner.clock.now()))
    runner.clock.advance(timedelta(minutes=3))


def _report(db: str, by: str, k: int) -> list[dict]:
    shown = CliRunner().invoke(app, ["backend", "vendor", "report", "--db", db, "--by", by, "--k", str(k), "--json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def test_one_childs_visits_never_make_a_cell_k_anonymous(tmp_path: Path, closing) -> None:
    world = closing(ReportingWorld(tmp_path / "world").start())
    with attached_runner(world, tmp_path) as runner:
        for _ in range(5):
            _buy(runner, "lin", "A1")  # one card, five visits, five pseudonyms
        for card in ("amy", "ben", "lin"):
            _buy(runner, card, "A3")
        assert world.publisher is not None and world.publisher.flush(20)
        db = str(tmp_path / "world" / "vendor.db")
        assert world.vendor is not None
        pseudonyms = dict(
            world.vendor.store.execute("SELECT product, COUNT(DISTINCT pseudonym) FROM sales GROUP BY product")
        )
        assert pseudonyms["milk-lowfat-290"] == 5, "the vendor sees five strangers where one child bought"

        open_day = _report(db, "product,day", 1)
        assert open_day and all(cell["suppressed"] for cell in open_day), "a day without its summary bounds nothing"

        runner.machine.close_finished_days("2026-03-03")
        assert world.publisher.flush(20)
        books = runner.machine.db.conn  # the truth only the machine holds: which card bought
        truth = dict(books.execute("SELECT product, COUNT(DISTINCT uid) FROM vends GROUP BY product"))
        truth["*"] = books.execute("SELECT COUNT(DISTINCT uid) FROM vends").fetchone()[0]
    assert truth == {"milk-lowfat-290": 1, "soymilk-250": 3, "*": 3}

    by_product = {cell["product"]: cell for cell in _report(db, "product,day", 2)}
    assert by_product["milk-lowfat-290"]["suppressed"], "one child's five visits shown as a cell of buyers"
    assert by_product["milk-lowfat-290"]["items"] is None and by_product["milk-lowfat-290"]["revenue"] is None
    for cell in _report(db, "product,day", 1):
        assert cell["buyers_at_least"] <= truth[cell["product"]], cell  # a bound, never more than the truth
    (day,) = _report(db, "day", 2)  # 8 items, at most 6 by one card: at least 2 buyers
    assert day == {
        "day": "2026-03-02",
        "buyers_at_least": 2,
        "items": 8,
        "revenue": day["revenue"],
        "suppressed": False,
    }
    assert day["revenue"] > 0 and truth["*"] >= day["buyers_at_least"]

    hidden = CliRunner().invoke(app, ["backend", "vendor", "report", "--db", db, "--by", "product,day,hour", "--csv"])
    rows = list(csv.reader(io.StringIO(hidden.output)))
    assert rows[0] == ["product", "day", "hour", "buyers_at_least", "items", "revenue"] and len(rows) > 1
    assert all(row[3:] == ["<5", "suppressed", "suppressed"] for row in rows[1:]), "a cell under k was shown"
    table = CliRunner().invoke(app, ["backend", "vendor", "report", "--db", db, "--by", "day", "--k", "2"])
    assert table.exit_code == 0 and "2026-03-02" in table.output and "buyers" in table.output

    report = ["backend", "vendor", "report", "--db", db, "--json"]
    bad = CliRunner().invoke(app, ["backend", "vendor", "report", "--db", db, "--by", "product,student"])
    assert bad.exit_code == 2 and "--by" in bad.output
    twice = CliRunner().invoke(app, ["backend", "vendor", "report", "--db", db, "--by", "product,day,product"])
    assert twice.exit_code == 2 and "--by product,day,product: product is given twice" in twice.output, twice.output
    machine = runner.machine.machine_id
    (mine,) = json.loads(CliRunner().invoke(app, [*report, "--by", "day", "--k", "2", "--machine", machine]).output)
    assert mine == day, "one machine's report is the day's, as this machine made all of it"
    mistyped = CliRunner().invoke(app, [*report, "--machine", machine.lower()])
    assert mistyped.exit_code == 2, "a machine the store never heard of printed an empty report"
    assert f"--machine {machine.lower()!r}: {db} holds no report from that machine" in mistyped.output


def test_a_cell_across_machines_and_days_is_bounded_by_its_largest_machine_day() -> None:
    """A card may buy at two machines and on two days: the slices' bounds do not add up, the largest holds."""
    most = {("m1", "d1"): 2, ("m2", "d1"): 3, ("m1", "d2"): 1}
    assert buyers_at_least({("m1", "d1"): 6, ("m2", "d1"): 3}, most) == 3
    assert buyers_at_least({("m1", "d1"): 1, ("m1", "d2"): 4}, most) == 4
    assert buyers_at_least({("m3", "d1"): 50}, most) == 0, "a machine-day with no summary bounds nothing"
    assert buyers_at_least({}, most) == 0


def test_a_release_window_never_holds_two_trading_days() -> None:
    """Held sales carry their window's start; a window cut at local midnight keeps each sale in its own day."""
    for minutes in (7, 15, 45, 120):
        for at in (datetime(2026, 3, 2, 23, 59, tzinfo=TAIPEI), datetime(2026, 3, 3, 0, 1, tzinfo=TAIPEI)):
            start, end = release_window(at, minutes, TAIPEI)
            assert start <= at < end and end - start <= timedelta(minutes=minutes)
            last = end - timedelta(microseconds=1)
            assert start.astimezone(TAIPEI).date() == at.date() == last.astimezone(TAIPEI).date()
    start, end = release_window(datetime(2026, 3, 2, 10, 7, 30, tzinfo=TAIPEI), 15, TAIPEI)
    assert (start, end) == (datetime(2026, 3, 2, 2, 0, tzinfo=UTC), datetime(2026, 3, 2, 2, 15, tzinfo=UTC))
