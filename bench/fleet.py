"""A district on one laptop: wall time and memory for 100 and 1,000 machines x one school day.

Runs `run_fleet` (2 worker processes) against a real Mosquitto with the vendor and issuer backends
consuming in the parent process, and checks that every report arrived exactly once. Beside each
fleet run, in the same run, its floor: the same machine-days simulated by the same number of
processes with no network at all (controller, journal and outbox only). Memory: RSS growth per open
machine with M controllers held open in one process.
Run: .venv/bin/python bench/fleet.py [--sizes 100,1000] [--processes 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import merge_results  # noqa: E402
from simulator.fleet.runner import run_fleet  # noqa: E402
from simulator.scenarios.reporting_world import ReportingWorld  # noqa: E402

DAY = date(2026, 3, 2)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_per_machine(count: int) -> float:
    """RSS growth per open machine (controller, state machine, SQLite connection, caches)."""
    from bench.common import demo_machine

    with tempfile.TemporaryDirectory() as tmp:
        demo_machine(Path(tmp) / "warm-up")  # imports and first-use caches are not per machine
        before = rss_mb()
        machines = [demo_machine(Path(tmp) / f"m{i}")[0] for i in range(count)]
        after = rss_mb()
        for machine in machines:
            machine.close()
    return (after - before) / count


def _simulate_only(indexes: list[int], students: int, root: str) -> int:
    """One process of the floor: the machine-days with no broker, no publisher, no backend."""
    from firmware.config.catalog import load_catalog
    from simulator.dev_keys import DevKeys
    from simulator.fleet.model import plan_machine, stockable
    from simulator.fleet.runner import CATALOG
    from simulator.fleet.worker import simulate_day

    catalog = load_catalog(CATALOG)
    products = stockable(catalog)
    keys = DevKeys(Path(root) / "keys")
    visits = 0
    for index in indexes:
        plan = plan_machine(index, DAY, students, 1, products)
        visits += simulate_day(plan, catalog, Path(root) / plan.machine_id, keys).visits
    return visits


def simulation_floor(size: int, students: int, processes: int) -> float:
    """Wall seconds for the same machine-days on the same number of processes, with no network."""
    context = multiprocessing.get_context("spawn")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        for p in range(processes):
            make_keys(Path(tmp) / str(p))
        started = time.perf_counter()
        with context.Pool(processes) as pool:
            pool.starmap(
                _simulate_only,
                [(list(range(p, size, processes)), students, str(Path(tmp) / str(p))) for p in range(processes)],
            )
        return time.perf_counter() - started


def make_keys(directory: Path) -> None:
    """The run's keys made before the clock starts, as the fleet's are."""
    from simulator.dev_keys import DevKeys

    DevKeys(directory / "keys")


def fleet_run(size: int, students: int, processes: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        world = ReportingWorld(Path(tmp), "mosquitto").start()
        try:
            started = time.perf_counter()
            cpu = os.times()
            result = run_fleet(size, DAY, students, 1, world.broker_access(), processes, world.keys.directory)
            vendor, issuer = world.vendor, world.issuer
            assert vendor is not None and issuer is not None
            deadline = time.monotonic() + 300
            while (
                vendor.store.count() < result.reports or issuer.store.count() < result.settlements
            ) and time.monotonic() < deadline:
                time.sleep(0.05)
            wall = time.perf_counter() - started
            spent = os.times()
            delivered, duplicates = vendor.store.count(), vendor.store.duplicates
            settled = issuer.store.count()
        finally:
            world.stop()
    return {
        "machines": size,
        "visits": result.visits,
        "sales": result.sales,
        "reports": result.reports,
        "delivered": delivered,
        "duplicates": duplicates,
        "settlements": result.settlements,
        "settlements_delivered": settled,
        "wall_s": round(wall, 2),
        "cpu_s_parent_and_workers": round(
            (spent.user - cpu.user) + (spent.system - cpu.system) + (spent.children_user - cpu.children_user), 1
        ),
        "wall_ms_per_machine": round(wall * 1000 / size, 1),
        "peak_worker_rss_mb": round(result.peak_rss_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--students", type=int, default=600)
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        floor = simulation_floor(size, args.students, args.processes)
        row = {**fleet_run(size, args.students, args.processes), "simulation_only_wall_s": round(floor, 2)}
        rows.append(row)
        print(
            f"{size:>5} machines  {row['visits']:>7} visits  {row['reports']:>7} reports, {row['delivered']} "
            f"delivered, {row['duplicates']} duplicates  wall {row['wall_s']:6.1f} s (simulation alone "
            f"{floor:5.1f} s)  peak worker RSS {row['peak_worker_rss_mb']:.0f} MB",
            flush=True,
        )
    per_machine = memory_per_machine(200)
    print(f"memory per open machine: {per_machine:.2f} MB RSS (200 controllers held open in one process)")
    merge_results(
        "fleet",
        {
            "runs": rows,
            "rss_mb_per_open_machine": round(per_machine, 3),
            "processes": args.processes,
            "students": args.students,
            "targets": {"wall_s_1000_max": 60, "rss_mb_per_machine_max": 2},
        },
    )


if __name__ == "__main__":
    main()
