"""Outage soak: machines keep selling while the broker and the vendor backend die and come back.

Several machines (each its own state dir, controller, outbox and publisher) sell on their own
threads as fast as they can on virtual time; a seeded chaos thread SIGKILLs Mosquitto and restarts
it at random moments (once for longer than anything a client keeps in memory), and crashes and
restarts the vendor backend. At the end everything must drain: backend count = machine count per
machine, no duplicates, no gaps in any machine's sequence, every outbox empty. Only 127.0.0.1;
bounded in count and time; stops by itself.

Run: .venv/bin/python -m simulator.reliability.soak --transactions 10000 --machines 4 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from firmware.app.node import Node
from firmware.config.machine import MachineSetup, load_machine
from firmware.controller.records import Hardware
from firmware.domain import CardTap
from firmware.reporting.publisher import OutboxPublisher
from firmware.threads import daemon
from simulator.hardware.virtual import RecordingDisplay, VirtualClock, VirtualDispenser
from simulator.paths import MACHINES
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.mosquitto import secured_mosquitto
from simulator.term_keys import simulation_term_key

SLOTS = ["A1", "A2", "A3", "B1", "B2", "C1", "D1", "E1", "E2"]
CARDS = [f"04{i:012X}" for i in range(200)]


@dataclass
class SoakReport:
    transactions: int = 0
    broker_outages: int = 0
    longest_outage_s: float = 0.0
    backend_crashes: int = 0
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(m["ok"] for m in self.machines.values())


def machine_setup(index: int) -> MachineSetup:
    base = load_machine(MACHINES / "demo.yaml")
    config = base.config.model_copy(update={"id": f"SOAK-{index:02d}", "rules": [], "lockouts": []})
    return MachineSetup(config, base.catalog, base.path)


class Progress:
    """Transactions done so far, across machines: the chaos thread strikes at points in this count."""

    def __init__(self) -> None:
        self.done = 0
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            self.done += 1


def sell(
    machine: Node,
    clock: VirtualClock,
    dispenser: VirtualDispenser,
    count: int,
    rng: random.Random,
    progress: Progress,
) -> int:
    controller = machine.controller
    for i in range(count):
        progress.tick()
        if i % 60 == 59:
            full = {slot: 20 for slot in SLOTS}
            for slot, n in full.items():
                dispenser.fill(slot, n)
            controller.restock(full)
        controller.dispatch("select", rng.choice(SLOTS))
        controller.present(CardTap(rng.choice(CARDS), "virtual", clock.now()))
        if controller.state.value != "idle":
            controller.dispatch("cancel")
        clock.advance(timedelta(seconds=20))
        machine.tick()  # what the machine's loop does between events (a day closes at midnight)
    return count


def run_soak(
    transactions: int, machines: int, seed: int, workdir: Path, max_outage_s: float = 1.5, long_outage_s: float = 6.0
) -> SoakReport:
    report = SoakReport(transactions=transactions)
    rng = random.Random(seed)
    started = time.monotonic()
    broker, access = secured_mosquitto(workdir)
    world = ReportingWorld(workdir / "world", broker="mosquitto", resend_after_s=1.0, access=access)
    backend = {"vendor": world.new_vendor(workdir / "vendor.db").start()}
    fleet: list[tuple[Node, OutboxPublisher]] = []
    threads = []
    progress = Progress()
    for index in range(machines):
        setup = machine_setup(index)
        clock = VirtualClock(datetime.fromisoformat("2026-03-02T07:30:00+08:00"))
        dispenser = VirtualDispenser({slot: 20 for slot in setup.config.slots})
        simulation_term_key(workdir / setup.config.id, clock.now().date(), "soak")
        link = replace(world.machine_link(setup.config.id), heartbeat_s=3600)
        machine = Node(setup, workdir / setup.config.id, Hardware(clock, RecordingDisplay(), dispenser), link=link)
        with machine.db.atomic("journal"):
            for uid in CARDS:
                machine.books.wallet.issue(uid, "staff", 10**9)
            for slot in setup.config.slots:
                machine.books.inventory.set_stock(slot, 20)
        machine.start(connect=False)
        fleet.append((machine, machine.connect()))
        share = transactions // machines + (1 if index < transactions % machines else 0)
        rng_of_machine = random.Random(f"{seed}:{index}")
        threads.append(daemon(sell, f"soak-{index}", machine, clock, dispenser, share, rng_of_machine, progress))
    done = threading.Event()
    # outages and crashes at seeded random points of the run, so they always fall while machines sell
    strikes = sorted(rng.uniform(0.05, 0.9) * transactions for _ in range(max(5, transactions // 1500)))

    def chaos() -> None:
        long_done = False
        for strike in strikes:
            while progress.done < strike and not done.is_set():
                time.sleep(0.001)
            if done.is_set():
                break
            if long_done and rng.random() < 0.35:
                backend["vendor"].abandon()  # the vendor's backend crashes mid-stream
                report.backend_crashes += 1
                done.wait(rng.uniform(0.1, 0.8))
                backend["vendor"] = world.new_vendor(workdir / "vendor.db").start()
            else:
                outage = long_outage_s if not long_done else rng.uniform(0.1, max_outage_s)
                long_done = True
                broker.stop()  # SIGKILL
                report.broker_outages += 1
                report.longest_outage_s = max(report.longest_outage_s, outage)
                time.sleep(outage)
                broker.start()

    chaos_thread = daemon(chaos, "soak-chaos")
    chaos_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    chaos_thread.join(timeout=300)  # every strike falls before the last sale, so the chaos finishes too
    done.set()
    if not broker.running:
        broker.start()
    store = backend["vendor"].store
    for _, publisher in fleet:
        publisher.flush(180)
    for machine, publisher in fleet:
        machine_id = machine.controller.config.id
        produced = machine.books.journal.last_seq("vendor")
        seqs = [
            row[0] for row in store.execute("SELECT seq FROM reports WHERE machine = ? ORDER BY seq", (machine_id,))
        ]
        sales = store.execute("SELECT COUNT(*), COUNT(DISTINCT txn) FROM sales WHERE machine = ?", (machine_id,))[0]
        machine_sales = machine.db.conn.execute(
            "SELECT COUNT(*) FROM vends WHERE status IN ('completed', 'refunded')"
        ).fetchone()[0]
        entry = {
            "produced": produced,
            "stored": len(seqs),
            "gaps": produced - len(set(seqs)),
            "duplicates": len(seqs) - len(set(seqs)),
            "acked": store.acked(machine_id),
            "sales_machine": machine_sales,
            "sales_backend": sales[0],
            "sales_distinct": sales[1],
            "outbox": publisher.depth(),
        }
        entry["ok"] = (
            seqs == list(range(1, produced + 1))
            and entry["acked"] == produced
            and entry["outbox"] == 0
            and sales[0] == sales[1] == machine_sales
        )
        report.machines[machine_id] = entry
        machine.close()
    backend["vendor"].stop()
    broker.stop()
    report.wall_s = round(time.monotonic() - started, 1)
    return report


def arguments(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The soak's size options, for ``python -m simulator.reliability.soak`` and ``bench/soak.py`` alike."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--transactions", type=int, default=10000)
    parser.add_argument("--machines", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def soak_in_temp(args: argparse.Namespace) -> SoakReport:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        return run_soak(args.transactions, args.machines, args.seed, Path(tmp))


def summary(report: SoakReport) -> dict[str, Any]:
    """What a run shows: printed by ``main``, recorded by ``bench/soak.py`` for docs/reliability.md."""
    return {
        "transactions": report.transactions,
        "broker_outages": report.broker_outages,
        "longest_outage_s": round(report.longest_outage_s, 1),
        "backend_crashes": report.backend_crashes,
        "wall_s": report.wall_s,
        "ok": report.ok,
        "machines": report.machines,
    }


def main() -> None:
    report = soak_in_temp(arguments(__doc__.splitlines()[0]))
    print(json.dumps(summary(report), indent=2))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
