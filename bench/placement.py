"""The 10,000-vend share with the whole process on one CPU, then on the other: where the disk's interrupts land.

The sustained share (bench/durability.py) leaves the process wherever the scheduler puts it. On a
virtual machine the disk's completion interrupts arrive on one vCPU, so a commit's fsync wakes a
process on that vCPU locally and one on the other vCPU through an inter-processor interrupt: the raw
commit (nearly all waiting) and the vend (half its time in its own code) gain or lose by different
amounts, and the share with them. Here each round pins this process, limit and work alike, to one CPU
(``os.sched_setaffinity``), alternating limit and work as every ratio does (bench/common.py
``interleaved``); /proc/interrupts says, for the same rounds, which CPU took the disk's interrupts.
Nothing is chosen from this: the target is judged on the unpinned figure, as a machine would run.
Run: .venv/bin/python bench/placement.py [--vends N] [--rounds R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROUNDS, interleaved, merge_results  # noqa: E402
from bench.durability import commits_per_s, sustained  # noqa: E402

VENDS = 10_000
DISK_QUEUE = "-req."  # a virtio block device's request queue in /proc/interrupts (virtio1-req.0)


def disk_interrupts() -> list[int]:
    """Per CPU, the interrupts the disk's request queues have taken so far (zeros where none is named)."""
    lines = Path("/proc/interrupts").read_text().splitlines()
    cpus = len(lines[0].split())
    counts = [0] * cpus
    for line in lines[1:]:
        fields = line.split()
        if fields and DISK_QUEUE in fields[-1]:
            for cpu, count in enumerate(fields[1 : cpus + 1]):
                counts[cpu] += int(count)
    return counts


@contextmanager
def pinned(cpu: int) -> Iterator[None]:
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, everywhere)


def on_cpu(directory: Path, cpu: int, vends: int, rounds: int) -> dict[str, Any]:
    before = disk_interrupts()
    with pinned(cpu):
        figures = interleaved(
            lambda _: commits_per_s(directory, 2 * vends) / 2,
            lambda number: sustained(directory / f"cpu{cpu}-{number}", vends),
            rounds,
        )
    taken = [after - then for after, then in zip(disk_interrupts(), before, strict=True)]
    share = taken[cpu] / sum(taken) if sum(taken) else None
    return {"cpu": cpu, **figures, "disk_interrupts_here": None if share is None else round(share, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vends", type=int, default=VENDS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-placement-", dir=args.dir) as tmp:
        for cpu in cpus:
            result = on_cpu(Path(tmp), cpu, args.vends, args.rounds)
            results.append(result)
            ratio = result["ratio"]
            work, limit = result["work"]["median"], result["limit"]["median"]
            print(
                f"  CPU {cpu}: {work:,.0f} vends/s, raw commits/s / 2 {limit:,.0f}, "
                f"share median {ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f}); "
                f"disk interrupts taken here: {result['disk_interrupts_here']}",
                flush=True,
            )
    merge_results("placement", {"vends": args.vends, "cpus": results})


if __name__ == "__main__":
    main()
