"""`vending backend vendor report`: k-anonymous aggregates from a vendor database filled by a real run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from simulator.cli import app
from simulator.scenarios.reporting_world import ReportingWorld
from tests.support.reporting import attached_runner, sell_many


def test_cells_from_fewer_than_k_buyers_are_suppressed(tmp_path: Path, closing) -> None:
    world = closing(ReportingWorld(tmp_path / "world").start())
    with attached_runner(world, tmp_path) as runner:
        sell_many(runner, 20)  # five products, four sales each, 2.5 minutes apart: four visits each
        assert world.publisher is not None and world.publisher.flush(20)
    db = str(tmp_path / "world" / "vendor.db")
    cli = CliRunner()

    assert world.vendor is not None
    truth = {
        product: (buyers, items, revenue)
        for product, buyers, items, revenue in world.vendor.store.execute(
            "SELECT product, COUNT(DISTINCT pseudonym), COUNT(*), SUM(price) FROM sales "
            "WHERE outcome = 'vended' GROUP BY product"
        )
    }
    assert min(b for b, _, _ in truth.values()) < 4 <= max(b for b, _, _ in truth.values()), truth  # both paths
    report = ["backend", "vendor", "report", "--db", db]
    shown = cli.invoke(app, [*report, "--by", "product,day", "--k", "4", "--json"])
    assert shown.exit_code == 0, shown.output
    cells = json.loads(shown.output)
    for cell in cells:
        buyers, items, revenue = truth[cell["product"]]
        assert cell["day"] == "2026-03-02"
        figures = [cell["buyers"], cell["items"], cell["revenue"]]
        assert figures == ([buyers, items, revenue] if buyers >= 4 else [None, None, None])
        assert cell["suppressed"] is (buyers < 4)
    assert len(cells) == len(truth)
    table = cli.invoke(app, [*report, "--by", "product,day", "--k", "4"])
    assert table.exit_code == 0 and "product" in table.output and "suppressed" in table.output

    hidden = cli.invoke(app, [*report, "--by", "product,day,hour", "--k", "5", "--csv"])
    assert hidden.exit_code == 0, hidden.output
    rows = list(csv.reader(io.StringIO(hidden.output)))
    assert rows[0] == ["product", "day", "hour", "buyers", "items", "revenue"] and len(rows) > 1
    assert all(row[3:] == ["<5", "suppressed", "suppressed"] for row in rows[1:]), "a cell under k was shown"

    bad = cli.invoke(app, ["backend", "vendor", "report", "--db", db, "--by", "product,student"])
    assert bad.exit_code == 2 and "--by" in bad.output
