"""Shared by the benchmarks: percentiles, a machine to drive, and results.json merging."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from firmware.app.node import Link, Node
from firmware.config.machine import load_machine
from firmware.controller.records import Hardware
from firmware.domain import CardTap
from firmware.reporting.mqtt import BrokerAddress
from simulator.hardware.virtual import RecordingDisplay, VirtualClock, VirtualDispenser
from simulator.paths import MACHINES
from simulator.term_keys import simulation_term_key

RESULTS = Path(__file__).resolve().parent / "results.json"
BIG = 10**9
CARDS = [f"04{i:012X}" for i in range(500)]  # a school's worth of cards, each buying a few times a day
SLOTS = ["A1", "A2", "A3", "B1", "B2", "D1", "E1", "E2"]  # the demo machine's compliant slots


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


ROUNDS = 5  # the fewest alternating rounds any ratio is measured over


def spread(values: list[float], digits: int = 3) -> dict[str, Any]:
    """Median and range of a figure over rounds, with every round's value (nothing summarised away)."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": [round(v, digits) for v in values],
    }


RAM_DISK = Path("/dev/shm")  # where a measurement runs with no disk under it


def vends_on_ram_arguments(doc: str | None, vends: int) -> tuple[argparse.Namespace, Path]:
    """The command line of a measurement of ``vends`` vends on a RAM disk: --vends, --rounds, --ram (checked)."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--vends", type=int, default=vends)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--ram", type=Path, default=RAM_DISK, help="a RAM-backed directory (default /dev/shm)")
    args = parser.parse_args()
    return args, ram_disk(args.ram)


def ram_disk(path: Path) -> Path:
    """``path`` if it is a directory; a measurement that needs a RAM disk stops here, saying so, otherwise."""
    if not path.is_dir():
        raise SystemExit(f"--ram {path}: no such directory; this measurement needs a RAM disk (tmpfs)")
    return path


def interleaved(
    limit: Callable[[int], float], work: Callable[[int], float], rounds: int = ROUNDS, digits: int = 3
) -> dict[str, Any]:
    """Measure a ratio against a limit that drifts: limit, work, limit, work, ... for ``rounds`` rounds.

    The raw limits on a shared box move by 2x within a minute, so a limit measured once beside a
    work measured later says little. Each round pairs the work with the limit measured just before
    it; the ratio is work / limit per round, reported as the median and spread of the rounds.
    """
    if rounds < ROUNDS:
        raise ValueError(f"at least {ROUNDS} rounds, got {rounds}")
    limits: list[float] = []
    works: list[float] = []
    for number in range(rounds):
        limits.append(limit(number))
        works.append(work(number))
    ratios = [w / lim for w, lim in zip(works, limits, strict=True)]
    return {"limit": spread(limits, digits), "work": spread(works, digits), "ratio": spread(ratios, digits)}


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
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(terse=True),
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


def open_demo(
    state_dir: Path, link: Link | None = None, at: str = "2026-03-02T08:00:00+08:00"
) -> tuple[Node, VirtualClock, VirtualDispenser]:
    """The demo machine on ``state_dir`` (made with a bench term key when new), bottomless slots, not started."""
    setup = load_machine(MACHINES / "demo.yaml")
    clock = VirtualClock(datetime.fromisoformat(at))
    dispenser = VirtualDispenser({code: BIG for code in setup.config.slots})
    simulation_term_key(state_dir, clock.now().date(), "bench")
    return Node(setup, state_dir, Hardware(clock, RecordingDisplay(), dispenser), link=link), clock, dispenser


def demo_machine(state_dir: Path, link: Link | None = None) -> tuple[Node, VirtualClock, VirtualDispenser]:
    """The demo machine with rich staff cards and bottomless slots, started and ready to vend (not connected)."""
    machine, clock, dispenser = open_demo(state_dir, link)
    with machine.db.atomic("journal"):
        for uid in CARDS:
            machine.books.wallet.issue(uid, "staff", BIG)
        for code in machine.controller.config.slots:
            machine.books.inventory.set_stock(code, 100)
    machine.start(connect=False)
    return machine, clock, dispenser


def demo_id() -> str:
    return load_machine(MACHINES / "demo.yaml").config.id


def demo_link(keys: Any, address: BrokerAddress | None = None, **timers: float) -> Link:
    """The demo machine's link with the run's keys (``DevKeys``); without an address it only fills its outbox."""
    return Link(address, keys.trust, keys.machine(demo_id()), **timers)


RESTOCK_EVERY = 90  # sales between two restocks of the benchmarks' machine (each a retained stock snapshot)


def vend_once(machine: Node, clock: VirtualClock, number: int, before_tap: Callable[[], None] | None = None) -> None:
    """The ``number``-th sale of the benchmarks' pattern: a restock every ``RESTOCK_EVERY`` sales, a selection, a tap.

    ``before_tap`` runs between selection and tap (where a latency benchmark starts its clock).
    """
    controller = machine.controller
    if number % RESTOCK_EVERY == RESTOCK_EVERY - 1:
        controller.restock({slot: 100 for slot in SLOTS})
    controller.dispatch("select", SLOTS[number % len(SLOTS)])
    if before_tap is not None:
        before_tap()
    controller.present(CardTap(CARDS[number % len(CARDS)], "virtual", clock.now()))


def raw_database(path: Path, settings: str = "") -> sqlite3.Connection:
    """The durability floor's database: the machine's own settings (WAL, synchronous=FULL), one small table.

    ``settings``: a pragma run first, for a machine whose database is set otherwise (bench/vend_levers.py).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    if settings:
        conn.execute(settings)  # before WAL, which fixes the page size with the file's first page
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def raw_commit(conn: sqlite3.Connection, number: int) -> None:
    """The durability floor: one small insert + COMMIT."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t (v) VALUES (?)", (f"row {number}",))
    conn.execute("COMMIT")


def raw_commit_samples(directory: Path, count: int, settings: str = "") -> list[float]:
    """Seconds of each of ``count`` raw commits in a row (``raw_commit`` on ``raw_database``)."""
    conn = raw_database(directory / "raw.db", settings)
    samples = []
    for number in range(count):
        started = time.perf_counter()
        raw_commit(conn, number)
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples


class Backends(NamedTuple):
    """The backends started in processes of their own: their databases and the vendor's process id."""

    vendor_db: Path
    issuer_db: Path
    vendor_pid: int


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def backends_elsewhere(broker_url: str, keys_dir: Path, workdir: Path) -> Iterator[Backends]:
    """The vendor and issuer backends in processes of their own, as in a deployment (another host).

    In the benchmark's own process they would compete with the machine for its interpreter lock and
    its disk, which a real machine never shares with the back office. Yields their SQLite files.
    """
    vending = str(Path(sys.executable).with_name("vending"))
    vendor_db, issuer_db = workdir / "vendor.db", workdir / "issuer.db"
    common = ["--broker", broker_url, "--machines", str(keys_dir / "machines")]
    commands = [
        [vending, "backend", "vendor", *common, "--db", str(vendor_db), "--key", str(keys_dir / "vendor.key")],
        [vending, "backend", "issuer", *common, "--db", str(issuer_db), "--key", str(keys_dir / "issuer.key")],
    ]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
    try:
        for process in processes:
            line = process.stdout.readline() if process.stdout is not None else ""
            if "backend on" not in line:
                raise RuntimeError(f"a backend did not start: {line!r}")
        yield Backends(vendor_db, issuer_db, processes[0].pid)
    finally:
        interrupt_all(processes)


def interrupt_all(processes: list[subprocess.Popen[Any]]) -> None:
    """Ctrl-C to each process (a clean stop: a backend finishes what it stored), killed after 30 s."""
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def stored(db: Path) -> int:
    """Reports a backend holds, read from its database beside it (WAL: readers never block it)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
