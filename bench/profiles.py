"""Where the time goes, sampled with py-spy: flame graphs kept in bench/profiles/, shares in results.json.

Three workloads, each the code path of one figure in docs/benchmarks.md:
  vend     one machine's sustained vends (reporter on), as bench/durability.py runs them
  machine_day  fleet machine-days (simulate_day), as bench/fleet.py's workers run them
  outbox   a 10,000-report outbox drained to a vendor backend in its own process (both processes)
Each is recorded twice with the same workload: once as an SVG flame graph (bench/profiles/<name>.svg)
and once as collapsed stacks (<name>.txt), from which the shares by category are computed. The
benchmark document quotes those shares, so "what limits it" comes from a profile, not from memory.
Run: .venv/bin/python bench/profiles.py [--only vend,machine_day,outbox]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, merge_results  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "profiles"
RATE = 250  # samples per second

WORKLOADS = {
    "vend": """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.durability import sustained
with tempfile.TemporaryDirectory() as tmp:
    sustained(Path(tmp), {size})
""",
    "machine_day": """
import sys, tempfile
from datetime import date
from pathlib import Path
sys.path.insert(0, {root!r})
from firmware.config.catalog import load_catalog
from simulator.dev_keys import DevKeys
from simulator.fleet.model import plan_machine, stockable
from simulator.fleet.runner import CATALOG
from simulator.fleet.worker import simulate_day
catalog = load_catalog(CATALOG)
products = stockable(catalog)
with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
    keys = DevKeys(Path(tmp) / "keys")
    for index in range({size}):
        plan = plan_machine(index, date(2026, 3, 2), 600, 1, products)
        simulate_day(plan, catalog, Path(tmp) / plan.machine_id, keys)
""",
    "outbox": """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.outbox_throughput import PARTS, fill_outbox, outbox_path
with tempfile.TemporaryDirectory() as tmp:
    directory = Path(tmp)
    db, _ = fill_outbox(directory, {size})
    print("filled", flush=True)
    for number in range(3):
        cpu = {{part: [] for part in PARTS}}
        outbox_path(db, directory / "keys", directory / f"work-{{number}}", {size}, cpu, [])
""",
}
SIZES = {"vend": 4000, "machine_day": 25, "outbox": 10000}  # vends, machine-days, reports in the outbox
DONE = "workload done"  # the last line every workload prints (``workload``): py-spy exits 0 whatever its child did
# the part of each run that is the workload (set-up such as imports or filling an outbox is left out)
WITHIN = {"vend": ("sustained (",), "machine_day": ("simulate_day (",), "outbox": ("outbox_path (", "OutboxPublisher.")}
BACKEND_PROCESS = "backend vendor"

# (category, pattern on the innermost frame's file or function), first match wins
CATEGORIES = [
    ("SQLite commit (the durable step)", r"Database\.atomic \(.*database\.py"),
    ("SQL statements", r"firmware/journal/|backends/store\.py"),
    ("state machine dispatch", r"transitions/|firmware/controller/dispatch\.py"),
    ("JSON encode/parse", r"\bjson/|firmware/reporting/wire\.py|firmware/reporting/codec\.py|msgspec"),
    ("schema checks", r"contract\.py|fastjsonschema|^validate \(<string>"),
    ("reports composed (reporter, outbox rows)", r"firmware/reporting/reporter\.py|firmware/reporting/publisher\.py"),
    ("signatures (Ed25519, JWS)", r"joserfc|cryptography|jws_eddsa|signing\.py"),
    ("pseudonyms and hashes (HMAC, SHA-256)", r"hmac\.py|hashlib|base64\.py|pseudonym\.py|batches\.py"),
    ("MQTT client (paho)", r"paho|ssl\.py|socket\.py"),
    ("controller callbacks and messages", r"firmware/controller/|firmware/messages\.py|firmware/policy/"),
]
IDLE = re.compile(r"(Event\.wait|Condition\.wait|_wait_for_tstate_lock|Client\._loop|select|Queue\.get|Popen\._wait)")


def workload(name: str, root: Path, size: int | None = None) -> str:
    """The Python source of workload ``name`` at ``size`` (``SIZES`` unless given), ending with ``DONE``."""
    source = WORKLOADS[name].format(root=str(root), size=SIZES[name] if size is None else size)
    return f"{source}print({DONE!r}, flush=True)\n"


def workload_command(name: str, root: Path, directory: Path, size: int | None = None) -> list[str]:
    """The command that runs workload ``name``, from a file of its own in ``directory``.

    Not ``python -c``: py-spy names each stack by its process's command line, and a script given inline
    would be copied, all its lines, into every stack it records.
    """
    script = directory / f"{name}_workload.py"
    script.write_text(workload(name, root, size))
    return [sys.executable, str(script)]


def record(name: str, root: Path, form: str, target: Path) -> None:
    command = ["record", "--subprocesses", "-r", str(RATE), "-f", form, "-o", str(target)]
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        command += ["--", *workload_command(name, root, Path(tmp))]
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        ran = subprocess.run([spy, *command], check=True, capture_output=True, text=True)
    if DONE not in ran.stdout:  # a profile of a workload that died part-way would be quoted as the whole
        raise RuntimeError(f"the {name} workload did not run to its end under py-spy:\n{ran.stderr[-2000:]}")


def shares(collapsed: Path, name: str) -> dict[str, Any]:
    """Share of the workload's busy samples per category (idle waits left out), by process side."""
    sides: dict[str, Counter[str]] = {}
    for number, line in enumerate(collapsed.read_text().splitlines(), 1):
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # every line is one whole stack and its count
            raise ValueError(f"{collapsed}:{number}: not a collapsed stack (frames, a space, a count)")
        frames = stack.split(";")
        side = "backend" if BACKEND_PROCESS in stack[:400] else "machine"
        if IDLE.search(frames[-1]) or (side == "machine" and not any(m in stack for m in WITHIN[name])):
            continue
        if side == "backend" and "Thread" not in stack:  # the backend's start-up, before the clock runs
            continue
        leaf = frames[-1]
        category = next((label for label, pattern in CATEGORIES if re.search(pattern, leaf)), "other Python")
        sides.setdefault(side, Counter())[category] += int(count)
    result: dict[str, Any] = {}
    for side, counts in sides.items():
        total = sum(counts.values())
        result[side] = {
            "samples": total,
            "shares": {label: round(n / total, 3) for label, n in counts.most_common()},
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    root = HERE.parent
    found: dict[str, dict[str, Any]] = {}
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / f"{name}.txt"
            record(name, root, "flamegraph", OUT / f"{name}.svg")
            record(name, root, "raw", raw)
            shutil.copy(raw, OUT / f"{name}.txt")
        found[name] = shares(OUT / f"{name}.txt", name)
        print(f"== {name}: bench/profiles/{name}.svg")
        for side, figures in found[name].items():
            print(f"  {side} ({figures['samples']} samples)")
            for label, share in figures["shares"].items():
                print(f"    {share:6.1%}  {label}")
    earlier = json.loads(RESULTS.read_text()).get("profiles", {}) if RESULTS.exists() else {}
    kept = {name: earlier[name] for name in WORKLOADS if name in earlier and name not in found}  # --only
    merge_results("profiles", {**kept, **found, "rate_hz": RATE, "tool": "py-spy"})


if __name__ == "__main__":
    main()
