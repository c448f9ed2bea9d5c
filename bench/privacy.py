"""The vendor + issuer collusion attack at full size: 300 students, 100 school days, both settlements.

Writes the figures into bench/results.json (key ``privacy``) and regenerates the table in
docs/privacy.md from them, so the document shows what was measured:
    .venv/bin/python bench/privacy.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import merge_results  # noqa: E402
from simulator.privacy.report import SETTLEMENTS, measure, write  # noqa: E402
from simulator.privacy.term import DESIGNS  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "privacy.md"


def main() -> None:
    started = time.perf_counter()
    figures = measure(100, 300, 1, SETTLEMENTS, tuple(DESIGNS))
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    merge_results("privacy", figures)
    write(DOC, figures)
    for run in figures["runs"]:
        shares = ", ".join(f"{a['days']}d {a['share']:.1%}" for a in run["after"])
        print(f"{run['settlement']:9} {run['design']:5} {shares}")


if __name__ == "__main__":
    main()
