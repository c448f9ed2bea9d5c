"""`make bench`: run every benchmark script in bench/ in turn; each prints its figures and merges
them into bench/results.json under its own key. Then the documents are generated from that file:
the reader table in docs/readers.md, the whole of docs/benchmarks.md and the measured block of
docs/scaling.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"__init__.py", "__main__.py", "common.py", "compare.py", "reader_figures.py", "report.py", "scaling_report.py"}


def main() -> int:
    failed = []
    for script in sorted(p for p in HERE.glob("*.py") if p.name not in SKIP and not p.name.startswith("_")):
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    if subprocess.run(
        [sys.executable, str(HERE / "reader_figures.py"), "--write", "docs/readers.md"], cwd=HERE.parent
    ).returncode:
        failed.append("reader_figures.py")
    for writer in ("report.py", "scaling_report.py"):  # docs/benchmarks.md, README, docs/scaling.md
        if subprocess.run([sys.executable, str(HERE / writer), "--write"], cwd=HERE.parent).returncode:
            failed.append(writer)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
