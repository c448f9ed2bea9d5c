"""The vendor backend on a real PostgreSQL: exactly-once with two backend processes sharing the load."""

from __future__ import annotations

from pathlib import Path

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
        produced = runner.machine.db.counter("seq:vendor")
        eventually(lambda: instances[0].store.count() == produced, what="every report in PostgreSQL")
        sales = instances[0].store.execute("SELECT COUNT(*), COUNT(DISTINCT txn) FROM sales")[0]
        assert sales == (runner.result.sales, runner.result.sales)
        assert instances[0].store.acked(controller.config.id) == produced
        # retention on PostgreSQL: every report of the day becomes a tombstone, the seqs stay taken
        assert instances[0].store.purge("2026-03-03") == produced
        assert instances[0].store.execute("SELECT COUNT(*) FROM sales")[0][0] == 0
        assert instances[0].store.count() == produced and instances[0].store.count("purged") == produced
