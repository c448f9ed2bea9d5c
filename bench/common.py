"""Shared by the benchmarks: percentiles, a machine to drive, and results.json merging."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware.app.assembly import Machine, build_machine
from firmware.config.machine import load_machine
from firmware.controller.records import Hardware
from simulator.hardware.virtual import RecordingDisplay, VirtualClock, VirtualDispenser
from simulator.paths import MACHINES
from simulator.term_keys import simulation_term_key

RESULTS = Path(__file__).resolve().parent / "results.json"
BIG = 10**9
CARDS = [f"04{i:012X}" for i in range(500)]  # a school's worth of cards, each buying a few times a day


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": round(percentile(ms, 0.50), 4),
        "p99_ms": round(percentile(ms, 0.99), 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "n": len(ms),
    }


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "when": datetime.now().isoformat(timespec="seconds"),
    }


def merge_results(key: str, figures: dict[str, Any]) -> None:
    """Read-modify-write bench/results.json: each benchmark owns one key."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[key] = {**figures, "machine": machine_info()}
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS)


def demo_machine(state_dir: Path, reporter: Any = None) -> tuple[Machine, VirtualClock, VirtualDispenser]:
    """The demo machine with one rich staff card and bottomless slots, ready to vend."""
    setup = load_machine(MACHINES / "demo.yaml")
    clock = VirtualClock(datetime.fromisoformat("2026-03-02T08:00:00+08:00"))
    dispenser = VirtualDispenser({code: BIG for code in setup.config.slots})
    simulation_term_key(state_dir, clock.now().date(), "bench")
    machine = build_machine(setup, state_dir, Hardware(clock, RecordingDisplay(), dispenser), reporter=reporter)
    with machine.db.atomic("journal"):
        for uid in CARDS:
            machine.books.wallet.issue(uid, "staff", BIG)
        for code in setup.config.slots:
            machine.books.inventory.set_stock(code, 100)
    machine.controller.start()
    return machine, clock, dispenser


def raw_commit_samples(directory: Path, count: int) -> list[float]:
    """The durability floor: one small insert + COMMIT with the machine's own settings."""
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    samples = []
    for i in range(count):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples
