"""A district on one laptop: wall time and memory for 10, 100 and 1,000 machines x one school day.

Runs `run_fleet` against a real Mosquitto with the vendor and issuer backends consuming, checks
that every report arrived exactly once, and measures the memory a machine costs by holding M
controllers open in one process (RSS growth / M).
Run: .venv/bin/python bench/fleet.py [--sizes 10,100,1000] [--processes 2]
"""

from __future__ import annotations

import argparse
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
            machine.db.close()
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--students", type=int, default=600)
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            world = ReportingWorld(Path(tmp), "mosquitto").start()
            try:
                started = time.perf_counter()
                result = run_fleet(
                    size, DAY, args.students, 1, world.broker_access(), args.processes, world.keys.directory
                )
                vendor, issuer = world.vendor, world.issuer
                assert vendor is not None and issuer is not None
                while vendor.store.count() < result.reports or issuer.store.count() < result.settlements:
                    time.sleep(0.05)
                wall = time.perf_counter() - started
                delivered, duplicates = vendor.store.count(), vendor.store.duplicates
            finally:
                world.stop()
        rows.append(
            {
                "machines": size,
                "visits": result.visits,
                "sales": result.sales,
                "reports": result.reports,
                "delivered": delivered,
                "duplicates": duplicates,
                "wall_s": round(wall, 2),
                "wall_ms_per_machine": round(wall * 1000 / size, 1),
                "peak_worker_rss_mb": round(result.peak_rss_mb, 1),
            }
        )
        print(
            f"{size:>5} machines  {result.visits:>7} visits  {result.reports:>7} reports, {delivered} delivered, "
            f"{duplicates} duplicates  wall {wall:6.1f} s  ({wall * 1000 / size:.0f} ms/machine)  "
            f"peak worker RSS {result.peak_rss_mb:.0f} MB"
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
