"""The full outage soak (docs/reliability.md), recorded: its figures go into bench/results.json (key ``soak``).

docs/reliability.md's "last full run" sentence is generated from that entry (``python -m simulator.docgen``)::

    .venv/bin/python bench/soak.py [--transactions 10000 --machines 4]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import merge_results  # noqa: E402
from simulator.reliability.soak import arguments, soak_in_temp, summary  # noqa: E402


def main() -> int:
    report = soak_in_temp(arguments((__doc__ or "").splitlines()[0]))
    figures = summary(report)
    merge_results("soak", figures)
    print(figures)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
