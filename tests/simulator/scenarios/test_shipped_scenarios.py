"""Every shipped scenario is an acceptance test: it must pass under the runner and the CLI."""

from __future__ import annotations

import pytest

from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from tests.conftest import SCENARIOS


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_passes(path, tmp_path, closing):
    """Each scenario runs as `vending run` does by default: with the embedded broker and both backends."""
    world = closing(ReportingWorld(tmp_path / "world").start())
    result = run_scenario(load_scenario(path), tmp_path / "machine", attach=world)
    assert result.expectations, "a shipped scenario must check something"
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


def test_required_scenarios_are_shipped():
    names = {p.stem for p in SCENARIOS}
    assert {
        "normal-morning",
        "lunchtime-lockout",
        "insufficient-funds",
        "jam-and-refund",
        "sold-out",
        "selection-timeout",
        "door-open-mid-session",
        "unknown-card",
        "power-cycle-mid-vend",
        "broker-outage",
        "crash-between-publish-and-ack",
    } <= names
