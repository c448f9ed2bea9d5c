"""The reader figures docs/readers.md shows, made from bench/results.json (never typed by hand).

    python bench/reader_figures.py                          print the table
    python bench/reader_figures.py --write docs/readers.md  replace the table between the markers
Not a benchmark itself: `make bench` runs reader_latency.py and idle_cpu.py, then this with --write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
BEGIN = "<!-- bench/reader_figures.py: begin -->"
END = "<!-- bench/reader_figures.py: end -->"


def table(results: dict[str, Any]) -> str:
    latency, idle = results["reader_latency"], results["idle_cpu"]
    unpaced, paced = latency["tap_to_decision"], latency["tap_to_decision_paced"]
    machine = latency["machine"]
    rows = [
        "| figure | measured | target |",
        "|---|---|---|",
        f"| tap → decision through the PN532 on a pty, p50 / p99 | {unpaced['p50_ms']:.2f} / "
        f"{unpaced['p99_ms']:.2f} ms ({unpaced['n']} taps) | |",
        f"| the same, emulator paced as a {latency['baud']}-baud UART (`--pace`), p50 / p99 | "
        f"{paced['p50_ms']:.2f} / {paced['p99_ms']:.2f} ms | |",
        f"| one InListPassiveTarget response (7-byte uid) on the wire at {latency['baud']} baud | "
        f"{latency['inlistpassivetarget_frame_wire_ms']:.2f} ms | |",
        f"| idle CPU, `vending serve` reading a PN532, over {idle['idle_seconds']:.0f} s | "
        f"{idle['serve_percent_of_core']:.1f} % of a core | ≤ {idle['target_percent']:.0f} % |",
        f"| idle CPU, `vending reader emulate --protocol pn532`, over {idle['idle_seconds']:.0f} s | "
        f"{idle['emulator_percent_of_core']:.1f} % of a core | ≤ {idle['target_percent']:.0f} % |",
        "",
        f"Measured by `make bench` on {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['when'][:10]}.",
    ]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="the Markdown file whose marked table to replace")
    args = parser.parse_args()
    shown = table(json.loads(RESULTS.read_text()))
    if args.write is None:
        print(shown)
        return 0
    doc = args.write.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{args.write}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = doc.split(BEGIN, 1)
    args.write.write_text(f"{head}{BEGIN}\n{shown}\n{END}{rest.split(END, 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
