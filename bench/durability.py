"""Tap -> authorisation decision, and sustained vends/s, against the raw cost of a durable SQLite commit.

The decision includes the durable debit (the card is not charged until it is on disk), so its floor
is one commit; a vend is two durable steps (debit, drop), so its floor is two commits. Everything
runs on a disk-backed temp dir (not tmpfs) with the machine's own settings (WAL, synchronous=FULL).
Run: .venv/bin/python bench/durability.py [--taps N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CARDS, demo_machine, merge_results, raw_commit_samples, summary_ms  # noqa: E402
from firmware.domain import CardTap  # noqa: E402

SLOTS = ["A1", "A2", "A3", "B1", "B2", "D1", "E1", "E2"]


def tap_to_decision(directory: Path, taps: int) -> list[float]:
    machine, clock, _ = demo_machine(directory / "decision")
    controller = machine.controller
    decided: list[float] = []
    mark = {"t": 0.0}

    def on_event(at, name, details):  # the decision: approved (debited) or denied
        if name in ("debited", "denied") and mark["t"]:
            decided.append(time.perf_counter() - mark["t"])
            mark["t"] = 0.0

    controller._events = on_event
    for i in range(taps):
        controller.dispatch("select", SLOTS[i % len(SLOTS)])
        mark["t"] = time.perf_counter()
        controller.present(CardTap(CARDS[i % len(CARDS)], "virtual", clock.now()))
    machine.db.close()
    return decided


def sustained(directory: Path, vends: int) -> float:
    machine, clock, _ = demo_machine(directory / f"sustained-{vends}")
    controller = machine.controller
    started = time.perf_counter()
    for i in range(vends):
        if i % 90 == 89:
            controller.restock({slot: 100 for slot in SLOTS})
        controller.dispatch("select", SLOTS[i % len(SLOTS)])
        controller.present(CardTap(CARDS[i % len(CARDS)], "virtual", clock.now()))
    elapsed = time.perf_counter() - started
    assert machine.books.vends.in_flight() == 0
    machine.db.close()
    return vends / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        commit = summary_ms(raw_commit_samples(directory, args.taps))
        decision = summary_ms(tap_to_decision(directory, args.taps))
        raw_rate = 1000 / commit["mean_ms"]
        scaling = []
        for vends in (100, 1000, 10000):
            rate = sustained(directory, vends)
            raw = summary_ms(raw_commit_samples(directory, 2 * vends))
            scaling.append(
                {
                    "vends": vends,
                    "vends_per_s": round(rate, 1),
                    "raw_commits_per_s": round(1000 / raw["mean_ms"], 1),
                    "share_of_raw_commit_rate": round(rate * 2 / (1000 / raw["mean_ms"]), 3),
                }
            )
    figures = {
        "raw_commit": commit,
        "tap_to_decision": decision,
        "decision_p99_over_commit_p99": round(decision["p99_ms"] / commit["p99_ms"], 2),
        "raw_commits_per_s": round(raw_rate, 1),
        "sustained": scaling,
        "targets": {"decision_p99_ms_max": 2.0, "sustained_share_min": 0.5},
    }
    merge_results("durability", figures)
    print(
        f"raw durable commit       p50 {commit['p50_ms']:.3f} ms  p99 {commit['p99_ms']:.3f} ms  "
        f"({raw_rate:.0f} commits/s)"
    )
    print(
        f"tap -> decision          p50 {decision['p50_ms']:.3f} ms  p99 {decision['p99_ms']:.3f} ms  "
        f"(p99 = {figures['decision_p99_over_commit_p99']}x one commit; target p99 <= 2 ms)"
    )
    print("sustained vends (2 durable commits each) vs raw commits/s with the same number of commits:")
    for row in scaling:
        print(
            f"  {row['vends']:>6} vends  {row['vends_per_s']:>8.1f} vends/s  raw {row['raw_commits_per_s']:>8.1f}"
            f" commits/s  share {row['share_of_raw_commit_rate']:.2f} (target >= 0.5)"
        )


if __name__ == "__main__":
    main()
