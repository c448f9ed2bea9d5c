"""Issue 33 on the three-node RabbitMQ cluster: a district day with faults, backends scaling out, and a soak.

1. ``day``: ``vending fleet --machines N --broker rabbitmq-cluster --kill-mid-day --db postgresql://...``
   (two vendor and two issuer instances; at half the fleet one node is SIGKILLed with one vendor and
   one issuer instance, and brought back 10 s later), beside the same day on one Mosquitto, both run
   as a user runs them; every report and settlement must be stored exactly once. Broker CPU per
   stored message is read from the nodes' /proc accounting in a run of the same day in this process.
2. ``consumers``: reports/s stored by one and by two vendor backend processes (``vending backend
   vendor --amqp``) draining the same backlog of single signed reports from the vendor's quorum queue
   into one PostgreSQL, interleaved rounds on one cluster.
3. ``--soak K``: K fleet days in a row on one cluster, each with a different node killed at its
   half; after each, every report is stored once and nothing is left unacknowledged.

Run: .venv/bin/python bench/cluster.py [--machines 1000] [--rounds 5] [--soak 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import interleaved, interrupt_all, merge_results, spread  # noqa: E402
from firmware.reporting.signed import sign_text  # noqa: E402
from simulator.servers.postgres import PostgresProcess  # noqa: E402
from simulator.servers.rabbitmq import CLUSTER, RabbitCluster, rabbit_cluster  # noqa: E402

DAY = date(2026, 3, 2)
VENDING = str(Path(sys.executable).with_name("vending"))
BACKLOG_MACHINES = 40  # single reports from this many machines' days (~260 each): what the consumers drain


def fleet_cli(machines: int, broker: str, extra: list[str]) -> dict[str, Any]:
    """``vending fleet ... --json`` as a user runs it; its figures."""
    run = subprocess.run(
        [VENDING, "fleet", "--machines", str(machines), "--broker", broker, "--processes", "2", "--json", *extra],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if run.returncode != 0:
        raise RuntimeError(f"vending fleet --broker {broker} failed: {run.stderr[-2000:]}")
    return dict(json.loads(run.stdout))


def day_on_cluster(machines: int, workdir: Path) -> dict[str, Any]:
    with PostgresProcess(workdir / "pg-day") as postgres:
        cluster = fleet_cli(machines, CLUSTER, ["--kill-mid-day", "--db", postgres.dsn])
    mosquitto = fleet_cli(machines, "mosquitto", [])
    lost = cluster["reports"] - cluster["delivered"] + cluster["settlements"] - cluster["settlements_delivered"]
    return {
        "machines": machines,
        "visits": cluster["visits"],
        "node_kills": cluster["node_kills"],
        "backend_kills": cluster["backend_kills"],
        "reports": cluster["reports"] + cluster["settlements"],
        "lost": lost,
        "duplicates": cluster["duplicates"],
        "wall_s": cluster["wall_s"],
        "mosquitto_wall_s": mosquitto["wall_s"],
        "mosquitto_lost": mosquitto["reports"] - mosquitto["delivered"],
    }


def broker_cpu_per_message(cluster: RabbitCluster, machines: int, workdir: Path) -> dict[str, float]:
    """One fleet day through an already formed cluster: the nodes' CPU per message stored, no faults."""
    from simulator.fleet.cluster_day import ClusterDay
    from simulator.fleet.runner import run_fleet
    from simulator.scenarios.reporting_world import ReportingWorld

    cluster.purge("vendor.reports", "vendor.ordered", "issuer.reports")  # what another part left unacked
    world = ReportingWorld(workdir / "cpu-world", broker=CLUSTER, cluster=cluster).start()
    day = ClusterDay(world, machines)
    try:
        day.prepare()
        before = cluster.cpu_seconds()
        result = run_fleet(machines, DAY, 600, 1, world.broker_access(), 2, world.keys.directory)
        _wait_stored(world, result.reports, result.settlements)
        spent = cluster.cpu_seconds() - before
    finally:
        day.stop()
        world.stop()
    messages = result.reports + result.settlements
    return {"machines": machines, "messages": messages, "broker_cpu_s": round(spent, 2),
            "broker_cpu_ms_per_message": round(1000 * spent / messages, 3)}  # fmt: skip


def _wait_stored(world: Any, reports: int, settlements: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while world.vendor.store.count() < reports or world.issuer.store.count() < settlements:
        if time.monotonic() > deadline:
            raise RuntimeError(f"stored {world.vendor.store.count()} of {reports} reports within {timeout:.0f}s")
        time.sleep(0.1)


# ---- 2. consumers ---------------------------------------------------------------------------------
def backlog(workdir: Path) -> tuple[Path, list[tuple[str, bytes]]]:
    """(keys dir, [(topic, signed single report)]) from real machine days with no network."""
    from firmware.config.catalog import load_catalog
    from firmware.journal.outbox import Outbox
    from simulator.dev_keys import DevKeys
    from simulator.fleet.model import plan_machine, stockable
    from simulator.fleet.runner import CATALOG
    from simulator.fleet.worker import simulate_day

    catalog = load_catalog(CATALOG)
    products = stockable(catalog)
    keys = DevKeys(workdir / "keys")
    messages = []
    for index in range(BACKLOG_MACHINES):
        plan = plan_machine(index, DAY, 600, 1, products)
        state = workdir / "machines" / plan.machine_id
        simulate_day(plan, catalog, state, keys)
        outbox = Outbox.open(state / "machine.db")
        identity = keys.machine(plan.machine_id)
        messages += [(t, sign_text(identity, p).encode()) for t, p in outbox.payloads("vendor")]
        outbox.conn.close()
    return keys.directory, messages


def publish_backlog(cluster: RabbitCluster, messages: list[tuple[str, bytes]]) -> None:
    """Published over MQTT (QoS 1, many in flight) as the machines publish; the insider may write any topic."""
    from firmware.reporting.mqtt import make_client

    address = cluster.access().shared
    client = make_client(address, "bench-backlog", persistent=False)
    client.max_inflight_messages_set(1000)
    client.connect(*address.endpoint, keepalive=60)
    client.loop_start()
    sent = [client.publish(topic, body, qos=1) for topic, body in messages]
    for info in sent:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()
    deadline = time.monotonic() + 300
    while (held := cluster.queued("vendor.reports")) < len(messages):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the vendor's queue holds {held} of {len(messages)} published reports")
        time.sleep(0.2)


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole box so far, from /proc/stat (idle and iowait are not busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def drain_rate(cluster: RabbitCluster, postgres: PostgresProcess, keys: Path, messages: list[tuple[str, bytes]],
               instances: int, busy: list[float]) -> float:  # fmt: skip
    """Reports/s from the first stored to the last, ``instances`` backend processes on one queue.

    Appends to ``busy`` the share of the box's CPU in use over the same interval: what a second
    instance could still use is what one instance leaves idle.
    """
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS reports, acked, manifests, incidents, machines, retired CASCADE")
    cluster.purge("vendor.reports")
    publish_backlog(cluster, messages)
    access = cluster.access()
    processes = []
    for identity in ["vendor", "vendor-2"][:instances]:
        address = access.party(identity)
        command = [VENDING, "backend", "vendor", "--broker", str(address), "--amqp", str(access.amqp(identity)),
                   "--ca", str(address.ca_file), "--cert", str(address.cert_file), "--cert-key", str(address.key_file),
                   "--db", postgres.dsn, "--key", str(keys / "vendor.key"), "--machines", str(keys / "machines"),
                   "--client-id", f"bench-{identity}"]  # fmt: skip
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        first = last = None
        deadline = time.monotonic() + 600
        with psycopg.connect(postgres.dsn, autocommit=True) as db:
            while time.monotonic() < deadline:
                try:
                    count = int(db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])  # type: ignore[index]
                except psycopg.errors.UndefinedTable:
                    count = 0
                now = time.perf_counter()
                if count and first is None:
                    first, first_count, cpu_at_first = now, count, busy_jiffies()
                if count >= len(messages):
                    last, cpu_at_last = now, busy_jiffies()
                    break
                time.sleep(0.02)
        if first is None or last is None or last <= first:
            raise RuntimeError(f"the backends stored {count} of {len(messages)} reports")
        busy.append((cpu_at_last[0] - cpu_at_first[0]) / max(1, cpu_at_last[1] - cpu_at_first[1]))
        return (len(messages) - first_count) / (last - first)
    finally:
        interrupt_all(processes)


def consumers(cluster: RabbitCluster, workdir: Path, rounds: int) -> dict[str, Any]:
    keys, messages = backlog(workdir / "backlog")
    busy_one: list[float] = []
    busy_two: list[float] = []
    with PostgresProcess(workdir / "pg-consumers") as postgres:
        rates = interleaved(
            lambda _: drain_rate(cluster, postgres, keys, messages, 1, busy_one),
            lambda _: drain_rate(cluster, postgres, keys, messages, 2, busy_two),
            rounds,
        )
    # the most a second instance could add on this box: the CPU one instance leaves idle
    bound = [1 / share for share in busy_one]
    return {"reports": len(messages), "rounds": rounds, "one_instance_per_s": rates["limit"],
            "two_instances_per_s": rates["work"], "two_over_one": rates["ratio"],
            "box_busy_one_instance": spread(busy_one), "box_busy_two_instances": spread(busy_two),
            "bound_two_over_one": spread(bound)}  # fmt: skip


# ---- 3. soak --------------------------------------------------------------------------------------
def soak(cluster: RabbitCluster, workdir: Path, kills: int, machines: int) -> dict[str, Any]:
    """``kills`` fleet days in a row, each killing another node (and two backend instances) at its half."""
    from simulator.fleet.cluster_day import ClusterDay
    from simulator.fleet.runner import run_fleet
    from simulator.scenarios.reporting_world import ReportingWorld

    world = ReportingWorld(workdir / "soak-world", broker=CLUSTER, cluster=cluster).start()
    faults = ClusterDay(world, machines, kill_mid_day=True, down_s=5.0)
    reports = settlements = 0
    try:
        faults.prepare()
        for number in range(kills):
            faults.rearm(node=number % len(cluster.nodes) + 1)
            day = DAY + timedelta(days=number)
            result = run_fleet(machines, day, 200, 1, world.broker_access(), 2, world.keys.directory,
                               progress=lambda r: faults.progress(r.machines), term_start=DAY,
                               keep=workdir / "soak-machines")  # fmt: skip
            faults.finish()
            reports, settlements = reports + result.reports, settlements + result.settlements
            _wait_stored(world, reports, settlements)
            print(f"soak: kill {number + 1}/{kills} (node {faults.node}): {reports} reports stored", flush=True)
        assert world.vendor is not None and world.issuer is not None
        duplicates = faults.stored_twice()
        stored = world.vendor.store.count() + world.issuer.store.count()
    finally:
        faults.stop()
        world.stop()
    messages = reports + settlements
    return {"node_kills": faults.node_kills, "backend_kills": faults.backend_kills, "machines": machines,
            "reports": messages, "lost": messages - stored, "duplicates": duplicates}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--soak", type=int, default=0, help="node kills in a row (make soak-cluster: 20)")
    parser.add_argument("--soak-machines", type=int, default=30)
    parser.add_argument("--parts", default="day,consumers,cpu", help="which figures to measure (others are kept)")
    args = parser.parse_args()
    workdir = Path(
        tempfile.mkdtemp(prefix="bench-cluster-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    )
    figures: dict[str, Any] = {}
    try:
        if args.soak:
            with rabbit_cluster(workdir / "soak") as cluster:
                figures["soak"] = soak(cluster, workdir, args.soak, args.soak_machines)
            print(json.dumps(figures, indent=1))
            merge_results("cluster", _merged(figures))
            return
        parts = set(args.parts.split(","))
        if "day" in parts:
            figures["day"] = day_on_cluster(args.machines, workdir)
            print(json.dumps(figures["day"]), flush=True)
        with rabbit_cluster(workdir / "shared") as cluster:
            if "consumers" in parts:
                figures["consumers"] = consumers(cluster, workdir, args.rounds)
                print(json.dumps(figures["consumers"]), flush=True)
            if "cpu" in parts:
                figures["broker_cpu"] = broker_cpu_per_message(cluster, min(args.machines, 200), workdir)
                print(json.dumps(figures["broker_cpu"]), flush=True)
        merge_results("cluster", _merged(figures))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _merged(figures: dict[str, Any]) -> dict[str, Any]:
    """This run's figures over what bench/results.json already holds under ``cluster`` (a soak adds its own)."""
    results = Path(__file__).with_name("results.json")
    held = json.loads(results.read_text()).get("cluster", {}) if results.exists() else {}
    merged = {**held, **figures}
    day = merged.get("day", {})
    merged |= {key: day[key] for key in ("node_kills", "backend_kills", "reports", "lost", "duplicates") if key in day}
    return merged


if __name__ == "__main__":
    main()
