"""bench/profiles.py: every profiled workload runs to its end, so no flame graph is of a run that died part-way.

py-spy exits 0 whatever its child did; a workload that raised after its first round was once profiled
and quoted as the whole. Each runs here at a small size, without py-spy, exactly as ``record`` builds it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.profiles import DONE, WORKLOADS, record, shares, workload_command
from tests.support.reporting import require_mosquitto

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"vend": 20, "machine_day": 1, "outbox": 150}


def test_every_workload_has_a_small_size_here():
    assert set(SMALL) == set(WORKLOADS)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_a_workload_runs_to_its_end_and_says_so(name: str, tmp_path: Path) -> None:
    if name == "outbox":
        require_mosquitto()
    command = workload_command(name, ROOT, tmp_path, SMALL[name])
    ran = subprocess.run(command, capture_output=True, text=True, timeout=300)
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


def test_a_workload_runs_from_a_file_so_its_stacks_name_it_in_one_line(tmp_path: Path) -> None:
    """py-spy names every stack by its process's command line: an inline script would be in each, every line."""
    command = workload_command("vend", ROOT, tmp_path, 1)
    assert command[0] == sys.executable and "\n" not in " ".join(command)
    assert Path(command[1]).read_text().rstrip().endswith(f"print({DONE!r}, flush=True)")


def test_shares_refuse_a_line_that_is_not_a_whole_stack(tmp_path: Path) -> None:
    collapsed = tmp_path / "vend.txt"
    collapsed.write_text(
        'process 1:"python -c \nimport sys";sustained (bench/durability.py:113);x (firmware/journal/a.py:1) 3\n'
    )
    with pytest.raises(ValueError, match=r"vend\.txt:1: not a collapsed stack"):
        shares(collapsed, "vend")
    collapsed.write_text('process 1:"python w.py";sustained (bench/durability.py:113);x (firmware/journal/a.py:1) 3\n')
    assert shares(collapsed, "vend") == {"machine": {"samples": 3, "shares": {"SQL statements": 1.0}}}
