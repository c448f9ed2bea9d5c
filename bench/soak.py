"""The full outage soak (docs/reliability.md), recorded: its figures go into bench/results.json (key ``soak``).

docs/reliability.md's "last full run" sentence is generated from that entry (``python -m simulator.docgen``)::

    .venv/bin/python bench/soak.py [--transactions 10000 --machines 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import merge_results  # noqa: E402
from simulator.reliability.soak import run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10000)
    parser.add_argument("--machines", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        report = run_soak(args.transactions, args.machines, args.seed, Path(tmp))
    machines = {name: {"ok": entry["ok"], "produced": entry.get("produced")} for name, entry in report.machines.items()}
    figures = {
        "transactions": report.transactions,
        "broker_outages": report.broker_outages,
        "longest_outage_s": round(report.longest_outage_s, 1),
        "backend_crashes": report.backend_crashes,
        "wall_s": report.wall_s,
        "ok": report.ok,
        "machines": machines,
    }
    merge_results("soak", figures)
    print(figures)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
