"""The vendor backend on a real PostgreSQL: exactly-once with two backend processes sharing the load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.backends.store import Report
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.postgres import PostgresProcess, pg_bin
from tests.support.packages import missing_package
from tests.support.reporting import attached_runner, require_mosquitto, sell_many, shared_vendors
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    if pg_bin() is None:
        missing_package("PostgreSQL", "postgresql")
    server = PostgresProcess(tmp_path_factory.mktemp("pg")).start()
    yield server
    server.stop()


def test_postgres_store_is_idempotent_and_acks_only_contiguous_runs(postgres, closing):
    from simulator.backends.postgres_store import PostgresReportStore

    store = closing(PostgresReportStore(postgres.dsn))
    store.conn.execute("TRUNCATE reports, acked")
    report = lambda seq: Report("M1", seq, "sale", {"seq": seq, "txn": f"t{seq}"})  # noqa: E731
    assert store.store_many([report(1), report(2), report(4)]) == {"M1": 2}
    assert store.store_many([report(2)]) == {"M1": 2} and store.duplicates == 1
    assert store.store_many([report(3)]) == {"M1": 4}
    assert store.count("sale") == 4
    assert store.execute("SELECT txn FROM sales WHERE seq = ?", (3,)) == [("t3",)]


def test_the_k_anonymous_report_bounds_buyers_from_the_day_summaries_on_postgresql(postgres, closing):
    """The same bound as on SQLite, through PostgreSQL's generated views (``summaries`` casts its counts)."""
    from simulator.backends.analytics import aggregate
    from simulator.backends.postgres_store import PostgresReportStore

    store = closing(PostgresReportStore(postgres.dsn))
    store.conn.execute("TRUNCATE reports, acked")
    time = "2026-03-02T10:00+08:00"

    def sale(seq: int, product: str) -> Report:
        body = {"txn": f"t{seq}", "time": time, "outcome": "vended", "product": product, "price": 25}
        return Report("M1", seq, "sale", {"seq": seq, **body, "pseudonym": f"visit{seq}"})

    day = {"seq": 8, "day": "2026-03-02", "buyers": 4, "sales": 7, "most_by_one_buyer": 2}
    store.store_many([*(sale(n, "milk") for n in range(1, 7)), sale(7, "toast")])
    assert aggregate(store, ["product", "day"], 1)[0][2:] == ["<1", "suppressed", "suppressed"], "no summary yet"
    store.store_many([Report("M1", 8, "summary", day)])
    assert aggregate(store, ["product", "day"], 3) == [  # six milks, at most two by one card: three cards at least
        ["milk", "2026-03-02", 3, 6, 150],
        ["toast", "2026-03-02", "<3", "suppressed", "suppressed"],
    ]


def test_two_backends_on_one_postgres_share_a_subscription_exactly_once(postgres, tmp_path: Path, closing):
    require_mosquitto()
    world = closing(ReportingWorld(tmp_path / "world", broker="mosquitto").start())
    instances = shared_vendors(world, postgres.dsn, "pg", closing)
    instances[0].store.conn.execute("TRUNCATE reports, acked, machines")
    for instance in instances:
        assert instance.connected.wait(15)
    with attached_runner(world, tmp_path) as runner:
        controller = runner.machine.controller
        sell_many(runner, 30)
        assert world.publisher is not None and world.publisher.flush(30)
        produced = runner.machine.books.journal.last_seq("vendor")
        eventually(lambda: instances[0].store.count() == produced, what="every report in PostgreSQL")
        sales = instances[0].store.execute("SELECT COUNT(*), COUNT(DISTINCT txn) FROM sales")[0]
        assert sales == (runner.result.sales, runner.result.sales)
        assert instances[0].store.acked(controller.config.id) == produced
        # retention on PostgreSQL: the day's partition is dropped whole; the ack watermark stands for its seqs
        store: Any = instances[0].store
        assert store.partitions() == ["reports_d20260302"]
        assert store.purge("2026-03-03") == produced
        assert store.partitions() == [] and store.count() == 0
        assert store.acked(controller.config.id) == produced
        late = Report(controller.config.id, 1, "sale", {"seq": 1, "time": "2026-03-02T09:00:00+08:00"})
        before = store.duplicates
        assert store.store_many([late]) == {controller.config.id: produced}
        assert store.count() == 0 and store.duplicates == before + 1, "a late copy of a retired report is not stored"


def test_an_erasure_leaves_no_copy_of_the_records_in_any_file_of_the_database(postgres, closing):
    """Issue 30: after `school erase` returns, no vendor database file holds the records, PostgreSQL's included."""
    from simulator.backends.postgres_store import PostgresReportStore

    store = closing(PostgresReportStore(postgres.dsn))
    store.conn.execute("TRUNCATE reports, acked")
    secret = "erase-me-" + "7" * 24  # what an erased sale carried (as its txn) and must carry nowhere after
    sale = lambda seq, txn: Report("M1", seq, "sale", {"seq": seq, "txn": txn, "time": "2026-03-02T10:00+08:00"})  # noqa: E731
    store.store_many([sale(1, secret), *(sale(seq, f"keep-{seq}") for seq in range(2, 200))])
    store.conn.execute("ANALYZE reports")  # statistics taken while the sale is there, as autovacuum would
    store.conn.execute("CHECKPOINT")
    files = [path for path in postgres.data.rglob("*") if path.is_file()]
    assert any(secret.encode() in path.read_bytes() for path in files), "the sale is in the files before"
    assert store.erase_records("M1", (1,)) == [(1, "sale")]
    after = [path for path in postgres.data.rglob("*") if path.is_file()]
    holding = [str(path.relative_to(postgres.data)) for path in after if secret.encode() in path.read_bytes()]
    assert holding == [], f"still in {holding}"
    assert store.count("sale") == 198 and store.count("erased") == 1


def test_reports_are_partitioned_by_day_and_the_day_queries_read_one_partition(postgres, closing):
    """Issue 33: one partition a day; the dashboard's and the school requests' day queries are pruned to it."""
    from simulator.backends.postgres_store import PostgresReportStore
    from simulator.dashboard.board import read_board

    store = closing(PostgresReportStore(postgres.dsn))
    store.conn.execute("TRUNCATE reports, acked, retired")
    sale = lambda seq, day: Report(  # noqa: E731
        "M1", seq, "sale", {"seq": seq, "time": f"{day}T10:00:00+08:00", "outcome": "vended", "price": 25,
                            "product": "milk", "currency": "TWD"}, digest=f"{seq}@{day}")  # fmt: skip
    days = ["2026-03-02", "2026-03-03", "2026-03-04"]
    store.store_many([sale(n + 1, days[n // 10]) for n in range(30)])
    assert [p for p in store.partitions() if p.startswith("reports_d2026030")] == [
        "reports_d20260302", "reports_d20260303", "reports_d20260304"]  # fmt: skip
    assert store.execute("SELECT COUNT(*) FROM reports_d20260303")[0][0] == 10
    # a different report at a stored seq on another day is a conflict, never a second row
    assert store.store_many([sale(5, "2026-03-04")]) == {"M1": 30} and store.take_conflicts() == [("M1", 5)]
    assert store.count() == 30
    board = read_board(store, day="2026-03-03")
    assert board.items == 10
    for query in (
        f"SELECT COUNT(*) FROM reports WHERE kind = 'sale' AND {store.on_day()}",
        "SELECT seq FROM reports WHERE machine = 'M1' AND kind IN ('sale', 'denial') AND "
        f"{store.on_day()} AND seq > 0 ORDER BY seq",
    ):
        plan = "\n".join(row[0] for row in store.execute("EXPLAIN " + query.replace("?", "'2026-03-03'")))
        assert "reports_d20260303" in plan, plan
        assert "reports_d20260302" not in plan and "reports_d20260304" not in plan, plan


def _database(postgres: Any, name: str) -> str:
    """A fresh database ``name`` on the test server; its DSN."""
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    return postgres.dsn.rsplit("/", 1)[0] + f"/{name}"


def _tables(dsn: str) -> set[str]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return {str(name) for (name,) in rows}


def test_another_application_s_database_is_refused_and_left_as_it_was(postgres):
    """The vendor's store used to add its tables, views and partitions to any database its --db named."""
    import subprocess

    import psycopg

    from firmware.journal.owner import ForeignDatabase
    from simulator.backends.postgres_store import PostgresReportStore
    from tests.conftest import VENDING

    library = _database(postgres, "library")
    with psycopg.connect(library, autocommit=True) as conn:
        conn.execute("CREATE TABLE loans (book TEXT NOT NULL, student TEXT NOT NULL)")
    refused = r"postgresql://127\.0\.0\.1:\d+/library: holds loans: not the vendor's database; nothing was changed"
    with pytest.raises(ForeignDatabase, match=refused):
        PostgresReportStore(library)
    report = subprocess.run([VENDING, "backend", "vendor", "report", "--db", library], capture_output=True, text=True)
    assert report.returncode == 2 and "library: holds loans: not the vendor's database" in report.stderr
    assert "postgres@" not in report.stderr, "the error names the database, not the user or a password"
    assert _tables(library) == {"loans"}


def test_the_vendor_s_database_is_stamped_and_one_from_before_the_stamp_recognised(postgres, closing):
    import psycopg

    from firmware.journal.owner import ForeignDatabase
    from simulator.backends.postgres_store import PostgresReportStore

    vendor = _database(postgres, "vendor_reports")
    PostgresReportStore(vendor).close()
    with psycopg.connect(vendor, autocommit=True) as conn:
        assert conn.execute("SELECT party FROM vending_owner").fetchall() == [("vendor",)]
        conn.execute("DROP TABLE vending_owner")  # as a version before the stamp left it
    closing(PostgresReportStore(vendor))  # recognised by its tables, and stamped
    with psycopg.connect(vendor, autocommit=True) as conn:
        assert conn.execute("SELECT party FROM vending_owner").fetchall() == [("vendor",)]
        conn.execute("UPDATE vending_owner SET party = 'school'")  # another party's, however it came to be
    before = _tables(vendor)
    with pytest.raises(ForeignDatabase, match="vendor_reports: the school's database, not the vendor's database"):
        PostgresReportStore(vendor)
    assert _tables(vendor) == before
