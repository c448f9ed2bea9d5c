"""Tap -> authorisation decision, and sustained vends/s, against the raw cost of a durable SQLite commit.

The decision includes the durable debit (the card is not charged until it is on disk), so its floor
is one commit; a vend is two durable steps (debit, drop), so its floor is two commits. Everything
runs on a disk-backed temp dir (not tmpfs) with the machine's own settings (WAL, synchronous=FULL),
with the machine's MQTT reporter on: every report goes into the outbox inside the same commits.
For the decision, the publisher also runs, batching and signing the outbox to a real Mosquitto, with
the vendor and issuer backends storing and acking from processes of their own (everything switched on).

Beside the sustained figure at the largest scale, the split of a vend (bench/vend_sql.py): its SQL
alone, replayed with no controller, against the same raw commits; the WAL frames a vend writes
against a raw commit's; and a raw commit while its WAL grows against once it is reused.

Each figure alternates the limit and the work in rounds (commits, taps, commits, taps, ...) and
reports the median and spread of the rounds (bench/common.py ``interleaved``).
Run: .venv/bin/python bench/durability.py [--taps N] [--rounds R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    ROUNDS,
    backends_elsewhere,
    demo_link,
    demo_machine,
    interleaved,
    merge_results,
    percentile,
    raw_commit_samples,
    vend_once,
)
from bench.vend_sql import (  # noqa: E402
    FRAME_WINDOW,
    raw_commit_phases_us,
    raw_frames_per_commit,
    record,
    replay_s,
    wal_frames,
)
from firmware.reporting.mqtt import BrokerAddress  # noqa: E402
from firmware.reporting.publisher import OutboxPublisher  # noqa: E402
from simulator.scenarios.reporting_world import ReportingWorld  # noqa: E402
from simulator.servers.mosquitto import MosquittoProcess  # noqa: E402

SCALES = (100, 1000, 10000)


class Vending:
    """One demo machine with its reporter on; with ``publish``, its publisher drains the outbox to a
    real Mosquitto and the vendor and issuer backends store and ack from processes of their own."""

    def __init__(self, directory: Path, publish: bool) -> None:
        keys = ReportingWorld(directory / "world").keys  # every party's keys; no broker started
        self.publisher: OutboxPublisher | None = None
        self._stack = ExitStack()
        address = None
        if publish:
            mosquitto = self._stack.enter_context(MosquittoProcess(directory / "mosquitto"))
            address = BrokerAddress(mosquitto.host, mosquitto.port)
        link = demo_link(keys, address)  # the machine is enrolled before the backends start
        if publish:
            self._stack.enter_context(backends_elsewhere(str(address), keys.directory, directory))
        self.machine, self.clock, _ = demo_machine(directory / "machine", link)
        if publish:
            self.publisher = self.machine.connect()
            self.publisher.wait_connected()
        self.count = 0

    def vend(self, before_tap: Callable[[], None] | None = None) -> None:
        vend_once(self.machine, self.clock, self.count, before_tap)
        self.count += 1

    def vend_many(self, count: int) -> None:
        for _ in range(count):
            self.vend()

    def close(self) -> None:
        self.machine.close()
        self._stack.close()


def decision_p99(vending: Vending, taps: int) -> float:
    """p99 of tap -> decision (debit committed, or denial journaled) over ``taps`` taps, in ms."""
    controller = vending.machine.controller
    decided: list[float] = []
    mark = {"t": 0.0}

    def on_event(at: Any, name: str, details: Any) -> None:
        if name in ("debited", "denied") and mark["t"]:
            decided.append(time.perf_counter() - mark["t"])
            mark["t"] = 0.0

    def start_clock() -> None:
        mark["t"] = time.perf_counter()

    controller._events = on_event
    for _ in range(taps):
        vending.vend(start_clock)
    return percentile([d * 1000 for d in decided], 0.99)


def sustained(directory: Path, vends: int) -> float:
    """Vends/s of ``vends`` full vends in a row on a fresh machine (reporter on, no publisher)."""
    vending = Vending(directory, publish=False)
    started = time.perf_counter()
    vending.vend_many(vends)
    elapsed = time.perf_counter() - started
    if vending.machine.books.vends.in_flight() != 0:
        raise RuntimeError("a vend was left in flight")
    vending.close()
    return vends / elapsed


def sql_alone(directory: Path, vends: int, rounds: int) -> dict[str, Any]:
    """The vends' own SQL replayed with no controller around it, against the same raw commits (interleaved)."""
    vending = Vending(directory / "recorded", publish=False)
    snapshot = directory / "before-the-vends.db"
    statements = record(vending.machine, lambda: vending.vend_many(vends), snapshot)
    vending.close()
    figures = interleaved(
        lambda _: commits_per_s(directory, 2 * vends) / 2,
        lambda number: vends / replay_s(snapshot, statements, directory / f"replayed-{number}.db"),
        rounds,
    )
    return {"vends": vends, "statements_per_vend": round(len(statements) / vends, 2), **figures}


def frames(directory: Path) -> dict[str, float]:
    """WAL frames a vend writes (after a warm-up), against one raw commit's; and the raw commit's two phases."""
    vending = Vending(directory / "frames", publish=False)
    vending.vend_many(1000)
    written = wal_frames(vending.machine.db.conn, lambda: vending.vend_many(FRAME_WINDOW))
    vending.close()
    return {
        "per_vend": round(written / FRAME_WINDOW, 1),
        "per_raw_commit": round(raw_frames_per_commit(directory), 1),
        **raw_commit_phases_us(directory),
    }


def commits_per_s(directory: Path, commits: int) -> float:
    return commits / sum(raw_commit_samples(directory, commits))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--taps", type=int, default=1000, help="taps per decision round")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        vending = Vending(directory / "decision", publish=True)
        try:
            decision = interleaved(
                lambda _: percentile([s * 1000 for s in raw_commit_samples(directory, args.taps)], 0.99),
                lambda _: decision_p99(vending, args.taps),
                args.rounds,
            )
            drained = vending.publisher is not None and vending.publisher.flush(60)
        finally:
            vending.close()
        scaling = []
        for vends in SCALES:

            def limit(_: int, n: int = vends) -> float:
                return commits_per_s(directory, 2 * n) / 2  # the limit: 2 durable commits per vend

            def work(number: int, n: int = vends) -> float:
                return sustained(directory / f"sustained-{n}-{number}", n)

            rounds = interleaved(limit, work, args.rounds)
            scaling.append({"vends": vends, **rounds})
            print(
                f"  {vends:>6} vends: {rounds['work']['median']:>8.1f} vends/s, raw commits/s / 2 "
                f"{rounds['limit']['median']:>8.1f}, share median {rounds['ratio']['median']:.2f} "
                f"({rounds['ratio']['min']:.2f}-{rounds['ratio']['max']:.2f}) (target >= 0.5)",
                flush=True,
            )
        floor = sql_alone(directory, SCALES[-1], args.rounds)
        print(
            f"  the {floor['vends']:,} vends' SQL alone: {floor['work']['median']:.1f} vends/s, "
            f"share median {floor['ratio']['median']:.2f} ({floor['ratio']['min']:.2f}-{floor['ratio']['max']:.2f})",
            flush=True,
        )
        written = frames(directory)
        print(f"  WAL frames: {written}", flush=True)
    figures = {
        "sql_alone": floor,
        "wal_frames": written,
        "decision": {**decision, "taps_per_round": args.taps, "broker": "mosquitto", "outbox_drained": drained},
        "sustained": scaling,
        "targets": {"decision_p99_ms_max": 2.0, "sustained_share_min": 0.5},
    }
    merge_results("durability", figures)
    decided = decision["work"]
    print(
        f"tap -> decision p99 median {decided['median']:.3f} ms ({decided['min']:.3f}-{decided['max']:.3f}) over "
        f"{args.rounds} rounds; raw commit p99 median {decision['limit']['median']:.3f} ms (target p99 <= 2 ms)"
    )


if __name__ == "__main__":
    main()
