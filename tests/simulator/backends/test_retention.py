"""Backend retention: old reports are forgotten, yet a late redelivery of one is never stored again."""

from __future__ import annotations

import json

from firmware.reporting.signed import canonical, sign_text
from tests.support.reporting import attached_runner, sell


def test_purged_reports_leave_tombstones_that_still_catch_redeliveries_and_conflicts(world, capture, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        sell(runner, "A1", "amy")
        sell(runner, "A3", "ben")
    # leaving the run closes the trading day (its settlement) and drains the outbox
    vendor, issuer = world.vendor, world.issuer
    assert vendor is not None and issuer is not None
    stored = vendor.store.count()
    assert vendor.store.count("sale") == 2 and issuer.store.execute("SELECT COUNT(*) FROM settlements")[0][0] == 2

    assert vendor.store.purge("2026-03-02") == 0, "nothing is older than the cutoff"
    assert vendor.store.purge("2026-03-03") == stored
    assert vendor.store.execute("SELECT COUNT(*) FROM sales")[0][0] == 0
    assert vendor.store.execute("SELECT DISTINCT payload FROM reports") == [("{}",)], "no pseudonym, product or time"
    assert issuer.store.purge("2026-03-03") == 1
    assert issuer.store.execute("SELECT COUNT(*) FROM settlements")[0][0] == 0

    duplicates = vendor.store.duplicates
    sent = [(t, raw) for t, raw, _ in capture.messages if t.startswith("vending/") and t.endswith(("/sale", "/batch"))]
    for topic, raw in sent:  # the machine resends after a long outage: at-least-once on the wire
        vendor.receive(topic, raw)
    assert vendor.store.count() == stored and vendor.store.count("sale") == 0, "a purged report came back"
    assert vendor.store.duplicates > duplicates and vendor.incidents == 0

    first = json.loads(capture.json_of("/sale")[0]["payload"])
    topic = f"vending/v1/{first['machine']}/sale"
    different = sign_text(world.keys.machine(first["machine"]), canonical({**first, "price": first["price"] + 1}))
    vendor.receive(topic, different.encode())  # genuinely signed, but not what was stored at that seq
    assert vendor.incidents == 1 and vendor.store.count("sale") == 0, "a purged seq must not be filled again"


def test_retention_counts_from_each_machine_s_newest_record_not_the_wall_clock(tmp_path):
    """Issue 30: a vendor backend started on a fleet's vendor.db from March 2026 deleted every report."""
    from datetime import date

    from simulator.backends.store import Report, SqliteReportStore

    store = SqliteReportStore(tmp_path / "vendor.db")
    days = {"M-OLD": ["2020-01-01", "2020-06-01", "2020-06-30"], "M-NEW": ["2026-03-01", "2026-03-02"]}
    reports = [
        Report(machine, seq, "sale", {"time": f"{day}T10:00+08:00", "machine": machine, "seq": seq})
        for machine, listed in days.items()
        for seq, day in enumerate(listed, start=1)
    ]
    store.store_many(reports)
    forgotten, cutoffs = store.expire(180)  # today's wall clock is years past both machines' records
    assert cutoffs == {"M-OLD": "2020-01-02", "M-NEW": "2025-09-03"}
    assert forgotten == 1, "only M-OLD's record from more than 180 days before its newest"
    kept = store.execute("SELECT machine, seq FROM reports WHERE kind = 'sale' ORDER BY machine, seq")
    assert kept == [("M-NEW", 1), ("M-NEW", 2), ("M-OLD", 2), ("M-OLD", 3)]
    store.expire(180, today=date(2026, 3, 2))  # an explicit --now: counted back from that day for everyone
    assert store.execute("SELECT machine FROM reports WHERE kind = 'sale' ORDER BY machine, seq") == [
        ("M-NEW",),
        ("M-NEW",),
    ]
    store.close()


def test_a_vendor_backend_started_on_a_database_from_another_year_keeps_it(tmp_path):
    """Issue 30: `vending backend vendor` on a fleet's vendor.db from March 2026 deleted all its reports at start."""
    import os
    import signal
    import subprocess

    from simulator.backends.store import Report, SqliteReportStore
    from tests.conftest import VENDING
    from tests.simulator.cli.test_cli import vending
    from tests.simulator.cli.test_cli_errors import dead_port

    store = SqliteReportStore(tmp_path / "vendor.db")
    store.store_many(
        [Report("TPE-FLEET-0000", seq, "sale", {"time": f"2020-03-0{seq}T10:00+08:00", "seq": seq}) for seq in (1, 2)]
    )
    store.close()
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "keys")).returncode == 0
    keys, broker = tmp_path / "keys", f"mqtt://127.0.0.1:{dead_port()}"  # retention runs at start, broker or not
    backend = subprocess.Popen(
        [VENDING, "backend", "vendor", "--broker", broker, "--db", str(tmp_path / "vendor.db"),
         "--key", str(keys / "vendor.key"), "--machines", str(keys / "machines")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert backend.stdout is not None
        lines = [backend.stdout.readline() for _ in range(3)]
    finally:
        backend.send_signal(signal.SIGINT)
        backend.wait(timeout=30)
    said = "".join(lines)
    assert "retention: forgot 0 report(s) over 180 days before each machine's newest record" in said, said
    assert "TPE-FLEET-0000 2019-09-" in said  # kept from 180 days before its own newest record
    reopened = SqliteReportStore(tmp_path / "vendor.db")
    assert reopened.count("sale") == 2
    reopened.close()
