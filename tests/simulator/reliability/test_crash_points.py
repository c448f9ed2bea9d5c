"""Power cut at every durable step, in a real process: nothing lost, nothing doubled, nothing pending.

``crashrun.matrix()`` fixes, in code, for each kind of transaction, the crash points it reaches and
how often (the network side at its first arrival). Each (kind, point, nth arrival) is its own test
case, the same on every run, so the matrix runs in parallel:
a fresh state, a run with ``VENDING_CRASH_AT=point:nth`` -- the process dies there with ``os._exit``
-- then a restart on the same files and the invariants. Each case gets its own broker, so nothing
retained leaks between cases. A test per kind re-traces it, so the matrix cannot go stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from firmware.crashpoints import CRASH_EXIT_CODE, POINTS
from simulator.reliability.card_world import TEAR_ENV
from simulator.reliability.crashrun import KINDS, NETWORK_SIDE, cases, do_setup, matrix, phase, tear_cases, trace
from simulator.servers.broker import EmbeddedBroker
from tests.conftest import ROOT

TABLE = matrix()
CASES = cases()
TEARS = tear_cases()


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
    assert report["backend_reports"] == report["backend_acked"] == report["machine_reports"], (
        f"{label}: backend holds {report['backend_reports']} of {report['machine_reports']} reports"
    )
    assert report["outbox"] == 0, label
    assert report["card_steps"] == 0, f"{label}: a card's debit or refund left unresolved after its next tap"
    assert report["restock_slot"] in (report["restock_from"], 12), f"{label}: a restock half-applied"
    assert report["issuer_reports"] == report["issuer_machine_reports"], (
        f"{label}: the issuer holds {report['issuer_reports']} of {report['issuer_machine_reports']} account outcomes"
    )
    assert report["account_left_open"] == 0, f"{label}: an account debit's outcome never reported"


def test_the_matrix_covers_every_declared_crash_point_and_is_the_same_on_every_run() -> None:
    assert cases() == CASES and len(CASES) >= 40
    assert set(TABLE) == set(KINDS)
    reached = set().union(*TABLE.values())
    assert reached == set(POINTS), f"declared but never reached: {sorted(set(POINTS) - reached)}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_table_matches_what_a_clean_run_reaches(kind: str, tmp_path: Path) -> None:
    with EmbeddedBroker() as broker:
        traced = trace(kind, tmp_path, broker.url)
    machine_side = {point: count for point, count in TABLE[kind].items() if not point.startswith(NETWORK_SIDE)}
    assert {p: c for p, c in traced.items() if not p.startswith(NETWORK_SIDE)} == machine_side
    assert set(traced) == set(TABLE[kind]), f"reached {sorted(set(traced) ^ set(TABLE[kind]))} unlike the matrix"


@pytest.mark.parametrize("kind,point,nth", CASES, ids=[f"{k}-{p}-{n}" for k, p, n in CASES])
def test_a_crash_here_recovers_to_a_consistent_state(kind: str, point: str, nth: int, tmp_path: Path) -> None:
    label = f"{kind} crash at {point}:{nth}"
    with EmbeddedBroker() as broker:
        do_setup(tmp_path, broker.url, kind)  # in this process: no crash is armed before the run
        run = phase("run", tmp_path, broker.url, kind, {"VENDING_CRASH_AT": f"{point}:{nth}"})
        assert run.returncode in (0, CRASH_EXIT_CODE), f"{label}: run exited {run.returncode}: {run.stderr[-500:]}"
        recovered = phase("recover", tmp_path, broker.url)
        assert recovered.returncode == 0, f"{label}: recovery exited {recovered.returncode}: {recovered.stderr[-800:]}"
        check_invariants(json.loads(recovered.stdout.strip().splitlines()[-1]), label)


@pytest.mark.parametrize("kind,writes", TEARS, ids=[f"{k}-tear-after-{n}" for k, n in TEARS])
def test_a_card_pulled_after_any_write_loses_and_makes_no_money(kind: str, writes: int, tmp_path: Path) -> None:
    """The card leaves the field after its N-th write (the machine lives on); its next tap settles the rest."""
    label = f"{kind}, card pulled after write {writes}"
    with EmbeddedBroker() as broker:
        do_setup(tmp_path, broker.url, kind)
        run = phase("run", tmp_path, broker.url, kind, {TEAR_ENV: str(writes)})
        assert run.returncode == 0, f"{label}: run exited {run.returncode}: {run.stderr[-500:]}"
        recovered = phase("recover", tmp_path, broker.url)
        assert recovered.returncode == 0, f"{label}: recovery exited {recovered.returncode}: {recovered.stderr[-800:]}"
        report = json.loads(recovered.stdout.strip().splitlines()[-1])
        check_invariants(report, label)
        assert report["confirmed_drops"] == 0, f"{label}: vended on a debit the card never confirmed"


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
