"""Scripted tap sequences that drive the machine on virtual time and double as acceptance tests."""

from simulator.scenarios.runner import ScenarioResult, ScenarioRunner, run_scenario
from simulator.scenarios.schema import Scenario, load_scenario

__all__ = ["Scenario", "ScenarioResult", "ScenarioRunner", "load_scenario", "run_scenario"]
