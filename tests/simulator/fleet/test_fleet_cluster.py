"""Issue 33: a fleet's day on the RabbitMQ cluster with a node and two backend instances killed mid-day."""

from __future__ import annotations

import json
import sqlite3

import pytest

from simulator.servers.postgres import PostgresProcess, pg_bin
from simulator.servers.rabbitmq import rabbitmq_installed
from tests.support.commands import LONG_RUN, run_vending
from tests.support.packages import missing_package

pytestmark = pytest.mark.xdist_group("rabbitmq")


@LONG_RUN
def test_a_day_on_the_cluster_loses_a_node_and_two_backends_and_stores_everything_exactly_once(tmp_path):
    if not rabbitmq_installed():
        missing_package("RabbitMQ", "rabbitmq-server")
    if pg_bin() is None:
        missing_package("PostgreSQL", "postgresql")
    machines = 16
    with PostgresProcess(tmp_path / "pg") as postgres:
        run = run_vending(
            ["fleet", "--machines", str(machines), "--students", "120", "--broker", "rabbitmq-cluster"]
            + ["--db", postgres.dsn, "--kill-mid-day", "--out", str(tmp_path / "day"), "--processes", "2", "--json"]
        )
        assert run.returncode == 0, f"{run.stdout[-1500:]}\n{run.stderr[-3000:]}"  # the figures, then why
        figures = json.loads(run.stdout)
        assert figures["stranded"] == {}, "every machine's outbox drained"
        assert figures["node_kills"] == 1 and figures["backend_kills"] == 2
        assert figures["reports"] == figures["delivered"] > 0 and figures["duplicates"] == 0
        assert figures["settlements"] == figures["settlements_delivered"] == machines

        import psycopg

        with psycopg.connect(postgres.dsn) as db:
            runs = db.execute("SELECT machine, MIN(seq), MAX(seq), COUNT(*) FROM reports GROUP BY machine").fetchall()
            acked = dict(db.execute("SELECT machine, seq FROM acked").fetchall())
            states = dict(db.execute("SELECT machine, state FROM machines").fetchall())
            partitions = db.execute(
                "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'reports'"
            ).fetchone()
    assert len(runs) == machines
    assert all(low == 1 and high == count == acked[machine] for machine, low, high, count in runs), (
        "every machine's reports stored once each, contiguous, and all acknowledged: no outbox left waiting"
    )
    assert partitions is not None and partitions[0] == 2, "the day's partition and the default one"
    # every machine is on the dashboard; with a vendor instance killed mid-day, a machine whose "online" and
    # "offline" that instance held unacknowledged may read "online" until the silence watch (90 s) marks it
    assert set(states) == set(acked) and set(states.values()) <= {"online", "offline"}
    with sqlite3.connect(tmp_path / "day" / "issuer.db") as issuer:  # two issuer instances shared this file
        assert issuer.execute("SELECT COUNT(*), COUNT(DISTINCT machine) FROM settlement_days").fetchone() == (
            machines,
            machines,
        )


def test_every_machine_s_last_word_reaches_the_dashboard_through_two_vendor_instances(rabbitmq, tmp_path, closing):
    """A closing machine's "offline" is acknowledged before it disconnects (RabbitMQ 3.10 drops what is in
    flight when a client leaves: without the wait some machines stayed "online"), and the vendor reads
    liveness from one single-active-consumer queue, so its two instances cannot apply it out of order."""
    from datetime import date

    from simulator.fleet.cluster_day import ClusterDay
    from simulator.fleet.runner import run_fleet
    from simulator.scenarios.reporting_world import ReportingWorld
    from simulator.servers.rabbitmq import CLUSTER
    from tests.support.waiting import eventually

    rabbitmq.purge("vendor.reports", "vendor.ordered", "issuer.reports")
    machines = 12
    world = closing(ReportingWorld(tmp_path / "world", broker=CLUSTER, cluster=rabbitmq).start())
    day = closing(ClusterDay(world, machines))
    day.prepare()
    result = run_fleet(machines, date(2026, 3, 2), 100, 1, world.broker_access(), 2, world.keys.directory)
    assert world.vendor is not None
    eventually(lambda: world.vendor.store.count() == result.reports, timeout=60, what="every report stored")

    def said() -> dict[str, str]:
        return {str(m): str(s) for m, s in world.vendor.store.execute("SELECT machine, state FROM machines")}

    # each said "online" on connecting, beat, and "offline" once its day was drained and it closed
    eventually(lambda: len(said()) == machines, what="every machine on the dashboard")
    assert said() == {machine: "offline" for machine in said()}
