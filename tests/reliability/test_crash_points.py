"""Power cut at every durable step, in a real process: nothing lost, nothing doubled, nothing pending.

For each kind of vend the harness first runs it with ``VENDING_CRASH_TRACE`` to learn which crash
points it reaches and how often, then for every (point, nth arrival) runs it again in a fresh state
with ``VENDING_CRASH_AT=point:nth`` -- the process dies there with ``os._exit`` -- then restarts on the
same files and checks the invariants. Each case gets its own broker, so nothing retained leaks
between cases.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from firmware.crashpoints import CRASH_EXIT_CODE, POINTS
from simulator.servers.broker import EmbeddedBroker
from simulator.reliability.crashrun import KINDS
from tests.conftest import ROOT


def crashrun(phase: str, directory: Path, broker: str, kind: str = "success",
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator.reliability.crashrun", phase, "--dir", str(directory),
                           "--broker", broker, "--kind", kind],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=180, cwd=ROOT)


def trace(kind: str, tmp: Path) -> Counter[str]:
    """Which crash points a clean run of ``kind`` reaches, with how many arrivals each."""
    trace_file = tmp / f"trace-{kind}.txt"
    with EmbeddedBroker() as broker:
        assert crashrun("setup", tmp / f"trace-{kind}", broker.url).returncode == 0
        run = crashrun("run", tmp / f"trace-{kind}", broker.url, kind, {"VENDING_CRASH_TRACE": str(trace_file)})
        assert run.returncode == 0, run.stderr[-2000:]
    points = Counter(trace_file.read_text().split())
    # publisher retries and acks are timing-dependent in count; crash at their first few arrivals
    return Counter({point: min(count, 3) for point, count in points.items()})


CASES: list[tuple[str, str, int]] = []


def pytest_generate_cases(tmp: Path) -> list[tuple[str, str, int]]:
    cases = []
    for kind in KINDS:
        for point, count in sorted(trace(kind, tmp).items()):
            cases.extend((kind, point, nth) for nth in range(1, count + 1))
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[tuple[str, str, int]]:
    return pytest_generate_cases(tmp_path_factory.mktemp("traces"))


def check_invariants(report: dict, label: str) -> None:
    assert report["drained"], f"{label}: outbox did not drain after recovery"
    assert report["total"] == report["start_total"], f"{label}: money created or lost"
    assert report["in_flight"] == 0 and report["unsettled"] == [], f"{label}: a vend left pending"
    assert report["debits_per_txn"] in ([], [1]), f"{label}: a vend debited more than once"
    assert report["settlements_per_txn"] in ([], [1]), f"{label}: a vend settled more than once"
    assert set(report["statuses"]) <= {"completed", "refunded"}, label
    assert report["stock"] == report["start_stock"] - report["confirmed_drops"], f"{label}: stock != confirmed drops"
    assert report["confirmed_drops"] == report["physically_dropped"], f"{label}: machine and tray disagree"
    assert report["backend_sales"] == report["backend_distinct_sales"] == report["machine_sales"], label
    assert report["backend_denials"] == report["machine_denials"], f"{label}: denial reports lost or doubled"
    assert report["backend_reports"] == report["backend_acked"] == report["machine_reports"], \
        f"{label}: backend holds {report['backend_reports']} of {report['machine_reports']} reports"
    assert report["outbox"] == 0, label
    assert report["restock_slot"] in (report["restock_from"], 12), f"{label}: a restock half-applied"


def test_every_kind_of_vend_survives_a_crash_at_every_point_it_reaches(cases, tmp_path):
    assert len(cases) >= 40, "the trace found too few crash points; is the harness wired?"
    reached = {point for _, point, _ in cases}
    failures = []
    for index, (kind, point, nth) in enumerate(cases):
        label = f"{kind} crash at {point}:{nth}"
        state = tmp_path / f"case-{index}"
        with EmbeddedBroker() as broker:
            assert crashrun("setup", state, broker.url).returncode == 0
            run = crashrun("run", state, broker.url, kind, {"VENDING_CRASH_AT": f"{point}:{nth}"})
            if run.returncode not in (0, CRASH_EXIT_CODE):
                failures.append(f"{label}: run exited {run.returncode}: {run.stderr[-500:]}")
                continue
            recovered = crashrun("recover", state, broker.url)
            if recovered.returncode != 0:
                failures.append(f"{label}: recovery exited {recovered.returncode}: {recovered.stderr[-800:]}")
                continue
            try:
                check_invariants(json.loads(recovered.stdout.strip().splitlines()[-1]), label)
            except AssertionError as exc:
                failures.append(str(exc))
    assert not failures, "\n".join(failures)
    assert reached == set(POINTS), f"declared but never reached: {sorted(set(POINTS) - reached)}"


def test_every_durable_step_in_the_code_has_a_declared_crash_point():
    """New durable steps (an atomic() block or a reached() call) must be declared in POINTS."""
    source = "\n".join(p.read_text() for p in (ROOT / "firmware").rglob("*.py"))
    source += "\n".join(p.read_text() for p in (ROOT / "simulator").rglob("*.py"))
    steps = set(re.findall(r"\.atomic\(\"([a-z_.]+)\"\)", source))
    named = set(re.findall(r"crashpoints\.reached\(\"([a-z_.]+)\"\)", source))
    assert steps, "found no atomic() steps; did the pattern rot?"
    missing = {f"{s}.{edge}" for s in steps for edge in ("before_commit", "after_commit")} - set(POINTS)
    missing |= named - set(POINTS)
    assert not missing, f"durable steps without a declared crash point: {sorted(missing)}"
