"""bench/profiles.py: every profiled workload runs to its end, so no flame graph is of a run that died part-way.

py-spy exits 0 whatever its child did; a workload that raised after its first round was once profiled
and quoted as the whole. Each runs here at a small size, without py-spy, exactly as ``record`` builds it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.profiles import DONE, WORKLOADS, record, workload
from tests.support.reporting import require_mosquitto

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"vend": 20, "machine_day": 1, "outbox": 150}


def test_every_workload_has_a_small_size_here():
    assert set(SMALL) == set(WORKLOADS)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_a_workload_runs_to_its_end_and_says_so(name: str) -> None:
    if name == "outbox":
        require_mosquitto()
    ran = subprocess.run(
        [sys.executable, "-c", workload(name, ROOT, SMALL[name])], capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.rstrip().endswith(DONE)


def test_a_workload_that_dies_part_way_is_refused_not_profiled(tmp_path: Path, monkeypatch) -> None:
    """``record`` runs py-spy; here a stand-in that runs the child as py-spy would and, like it, exits 0."""
    spy = tmp_path / "py-spy"
    spy.write_text(f"#!{sys.executable}\nimport subprocess, sys\nargs = sys.argv[sys.argv.index('--') + 1:]\n"
                   "subprocess.run(args)\n")  # fmt: skip
    spy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setitem(WORKLOADS, "vend", "raise SystemExit(3)  # {root} {size}\n")
    with pytest.raises(RuntimeError, match="did not run to its end"):
        record("vend", ROOT, "raw", tmp_path / "vend.txt")
