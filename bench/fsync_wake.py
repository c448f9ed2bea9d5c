"""What sleeping through a commit's fsync costs the code that runs after it, measured without a disk.

On a disk, each of a vend's two durable commits blocks in fsync: the process sleeps, the CPU idles,
and the vend's code runs on afterwards without what it had in the CPU's caches (on a virtual machine,
a halted vCPU may also lose them to another guest). That cost lands outside the commits, in the vend's
own Python and SQL, so neither the raw commit nor the SQL-alone replay shows it.

Here the machine's database is on a RAM disk (no fsync at all), and each of the vend's two commits is
followed by a pause as long as the median durable commit on the disk, measured just before: in one
arm the process sleeps through the pause, as it does in fsync; in the other it spins (stays on its
CPU, caches warm). The vend's time less its pauses is its own code; the two arms differ only in how
the process waited. Rounds alternate the arms (bench/common.py ``interleaved``: spinning as the
limit, sleeping as the work).
Run: .venv/bin/python bench/fsync_wake.py [--vends N] [--rounds R] [--ram DIR]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    interleaved,
    merge_results,
    raw_commit_samples,
    spread,
    vends_on_ram_arguments,
)
from bench.durability import Vending  # noqa: E402
from firmware import crashpoints  # noqa: E402

VEND_COMMITS = ("debit.after_commit", "drop.after_commit")  # a vend's two durable steps, just committed


def spin(seconds: float) -> None:
    """Wait on the CPU: the process never sleeps, its caches stay its own."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def own_code_rate(ram: Path, vends: int, pause_s: float, wait: Callable[[float], None]) -> float:
    """Vends/s of the vend's own code: ``vends`` on a RAM disk, each commit followed by ``wait(pause_s)``,
    the time spent in the waits taken out."""
    waited = [0.0]

    def after_commit(point: str) -> None:
        if point in VEND_COMMITS:
            started = time.perf_counter()
            wait(pause_s)
            waited[0] += time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="bench-wake-", dir=ram) as tmp:
        vending = Vending(Path(tmp), publish=False)
        vending.vend_many(100)  # the machine warm, as the disk runs are past their first vends
        crashpoints.set_hook(after_commit)
        try:
            started = time.perf_counter()
            vending.vend_many(vends)
            elapsed = time.perf_counter() - started
        finally:
            crashpoints.set_hook(None)
            vending.close()
    return vends / (elapsed - waited[0])


def main() -> None:
    args, ram = vends_on_ram_arguments(__doc__, 5000)
    pauses: list[float] = []

    def pause_s() -> float:
        """The median durable commit on the disk, now (each round's pause is measured just before it)."""
        with tempfile.TemporaryDirectory(prefix="bench-wake-disk-") as disk:
            pauses.append(statistics.median(raw_commit_samples(Path(disk), 1000)))
        return pauses[-1]

    rounds = interleaved(
        lambda _: own_code_rate(ram, args.vends, pause_s(), spin),
        lambda _: own_code_rate(ram, args.vends, pauses[-1], time.sleep),
        args.rounds,
    )
    spinning = [1e6 / rate for rate in rounds["limit"]["rounds"]]
    sleeping = [1e6 / rate for rate in rounds["work"]["rounds"]]
    figures = {
        "vends": args.vends,
        "pause_us": spread([p * 1e6 for p in pauses], 0),
        "spinning_us_per_vend": spread(spinning, 1),
        "sleeping_us_per_vend": spread(sleeping, 1),
        "lost_us_per_vend": spread([b - a for a, b in zip(spinning, sleeping, strict=True)], 1),
        **rounds,
    }
    merge_results("fsync_wake", figures)
    print(
        f"a vend's own code, its two commits each followed by a {figures['pause_us']['median']:.0f} µs pause: "
        f"{figures['spinning_us_per_vend']['median']:.0f} µs spinning through them, "
        f"{figures['sleeping_us_per_vend']['median']:.0f} µs sleeping; "
        f"lost to waking {figures['lost_us_per_vend']['median']:.0f} "
        f"({figures['lost_us_per_vend']['min']:.0f}-{figures['lost_us_per_vend']['max']:.0f}) µs a vend"
    )


if __name__ == "__main__":
    main()
