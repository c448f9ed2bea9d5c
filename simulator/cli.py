"""The ``vending`` command: thin wrappers that parse options and call the simulator and firmware.

Exit codes: 0 success, 1 a scenario expectation failed, 2 invalid input (file, field, line, reason).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from firmware.config.catalog import load_catalog
from firmware.config.machine import load_machine
from firmware.config.source import read_yaml
from firmware.controller.diagram import mermaid
from firmware.errors import InputError, VendingError
from simulator.output import EventPrinter
from simulator.paths import SCENARIOS
from simulator.scenarios.runner import ScenarioResult, run_scenario
from simulator.scenarios.schema import load_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
err = Console(stderr=True)


def fail_input(exc: InputError | VendingError) -> None:
    """Print a bad-input error the way every command does, then exit 2."""
    typer.echo(str(exc), err=True)
    raise typer.Exit(2)


@app.command()
def run(
    script: Annotated[Path, typer.Option("--script", help="Scenario YAML (see README: Scenario format).")],
    machine: Annotated[Optional[Path], typer.Option(help="Machine config; overrides the scenario's `machine:`.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event line, with `t` and `event`.")] = False,
    state_dir: Annotated[Optional[Path], typer.Option(help="Keep the machine's state here (default: a temp dir).")] = None,
) -> None:
    """Run a scripted tap sequence headless on virtual time.

    Prints one line per event (virtual timestamp, event, details), or with --json one JSON object per
    line, then a summary: sales, revenue, denials by reason, expectations passed and failed.
    Exit 0 when every expectation held, 1 when any failed (each printed with expected vs actual),
    2 for invalid input.
    """
    try:
        scenario = load_scenario(script)
        if machine is not None:
            from dataclasses import replace
            scenario = replace(scenario, machine=load_machine(machine))
    except (InputError, VendingError) as exc:
        fail_input(exc)
    printer = EventPrinter(as_json)
    result = run_scenario(scenario, state_dir, printer)
    _summary(result, as_json)
    raise typer.Exit(0 if result.passed else 1)


def _summary(result: ScenarioResult, as_json: bool) -> None:
    passed = len(result.expectations) - len(result.failures)
    if as_json:
        typer.echo(json.dumps({"event": "summary", "sales": result.sales, "revenue": result.revenue,
                               "denials": dict(result.denials), "cancellations": dict(result.cancellations),
                               "refunds": result.refunds, "expectations_passed": passed,
                               "expectations_failed": len(result.failures)}, ensure_ascii=False))
        return
    for failure in result.failures:
        typer.echo(f"FAILED line {failure.line}: expect {failure.key}: expected {failure.expected!r}, "
                   f"got {failure.actual!r}")
    denials = ", ".join(f"{k} {v}" for k, v in sorted(result.denials.items())) or "none"
    typer.echo(f"summary: sales {result.sales}, revenue NT${result.revenue}, refunds {result.refunds}, "
               f"denials {sum(result.denials.values())} ({denials}), "
               f"expectations {passed} passed, {len(result.failures)} failed")


def _kind_of(path: Path) -> str:
    data = read_yaml(path).data
    if isinstance(data, dict):
        if "steps" in data:
            return "scenario"
        if "products" in data:
            return "catalog"
    return "machine"


@app.command()
def check(files: Annotated[list[Path], typer.Argument(help="Machine configs, catalogs or scenarios.")]) -> None:
    """Validate files; exit 2 on the first invalid one, printing FILE:LINE: field.path: reason."""
    for path in files:
        try:
            kind = _kind_of(path)
            {"scenario": load_scenario, "catalog": load_catalog, "machine": load_machine}[kind](path)
        except InputError as exc:
            fail_input(exc)
        typer.echo(f"{path}: ok ({kind})")


@app.command()
def diagram() -> None:
    """Print the controller's state machine as a Mermaid stateDiagram-v2."""
    typer.echo(mermaid(), nl=False)


@app.command()
def demo(
    scenario: Annotated[Path, typer.Option(help="Scenario to run.")] = SCENARIOS / "normal-morning.yaml",
) -> None:
    """Run a shipped scenario end to end on embedded defaults."""
    run(script=scenario, machine=None, as_json=False, state_dir=None)


def main() -> None:
    try:
        app()
    except VendingError as exc:  # a problem with the environment, not a crash
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
