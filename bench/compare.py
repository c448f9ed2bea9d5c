"""Two `make bench` result files side by side, as the Markdown table docs/benchmarks.md shows.

Used to record a refactor's before/after: the figures come from the two JSON files, never by hand.
    python bench/compare.py BEFORE.json AFTER.json                 print the table
    python bench/compare.py BEFORE.json AFTER.json --write DOC.md  replace the table between the markers in DOC.md
Not a benchmark itself: `make bench` skips it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.docgen import replace_between

BEGIN = "<!-- bench/compare.py: begin -->"
END = "<!-- bench/compare.py: end -->"

Results = dict[str, Any]


def _sustained(vends: int, key: str) -> Callable[[Results], float]:
    return lambda r: next(run[key] for run in r["durability"]["sustained"] if run["vends"] == vends)


def _fleet(machines: int, key: str) -> Callable[[Results], float]:
    return lambda r: next(run[key] for run in r["fleet"]["runs"] if run["machines"] == machines)


# (figure, how to read it from a results file, format)
FIGURES: list[tuple[str, Callable[[Results], float], str]] = [
    ("raw durable commit p99 (ms)", lambda r: r["durability"]["raw_commit"]["p99_ms"], "{:.3f}"),
    ("tap -> decision p99 (ms)", lambda r: r["durability"]["tap_to_decision"]["p99_ms"], "{:.3f}"),
    ("tap -> decision p99 / commit p99", lambda r: r["durability"]["decision_p99_over_commit_p99"], "{:.2f}"),
    *[(f"sustained vends/s, {n:,} vends", _sustained(n, "vends_per_s"), "{:,.0f}") for n in (100, 1000, 10000)],
    *[(f"  share, {n:,} vends", _sustained(n, "share_of_raw_commit_rate"), "{:.2f}") for n in (100, 1000, 10000)],
    ("outbox -> backend DB (msgs/s)", lambda r: r["outbox_to_backend"]["outbox_to_backend_msgs_per_s"], "{:,.0f}"),
    ("  share of `mosquitto_sub` drain", lambda r: r["outbox_to_backend"]["ratio"], "{:.3f}"),
    ("1,000 machines x one day, wall (s)", _fleet(1000, "wall_s"), "{:.1f}"),
    ("  reports produced", _fleet(1000, "reports"), "{:,}"),
    ("  reports delivered", _fleet(1000, "delivered"), "{:,}"),
    ("  duplicates stored", _fleet(1000, "duplicates"), "{:,}"),
    ("memory per open machine (MB RSS)", lambda r: r["fleet"]["rss_mb_per_open_machine"], "{:.2f}"),
    (
        "tap -> decision through a PN532 pty, p99 (ms)",
        lambda r: r["reader_latency"]["tap_to_decision"]["p99_ms"],
        "{:.2f}",
    ),
    ("embedded amqtt (msgs/s)", lambda r: r["brokers"]["embedded_amqtt_msgs_per_s"], "{:,.0f}"),
    ("Mosquitto (msgs/s)", lambda r: r["brokers"]["mosquitto_msgs_per_s"], "{:,.0f}"),
]


def table(before: Results, after: Results) -> str:
    rows = ["| figure | before | after |", "|---|---|---|"]
    for name, read, fmt in FIGURES:
        rows.append(f"| {name} | {fmt.format(read(before))} | {fmt.format(read(after))} |")
    when = (before["durability"]["machine"]["when"], after["durability"]["machine"]["when"])
    rows.append(f"| measured at | {when[0]} | {when[1]} |")
    return "\n".join(rows) + "\n"


def replace_block(doc: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    """``doc`` with what stands between the ``begin`` and ``end`` markers replaced by ``block``."""
    return replace_between(doc, begin, end, block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--write", type=Path, help="a Markdown file with the begin/end markers")
    args = parser.parse_args(argv)
    block = table(json.loads(args.before.read_text()), json.loads(args.after.read_text()))
    if args.write is None:
        print(block, end="")
    else:
        args.write.write_text(replace_block(args.write.read_text(), block))
    return 0


if __name__ == "__main__":
    sys.exit(main())
