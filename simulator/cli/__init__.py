"""The ``vending`` command: thin wrappers that parse options and call the simulator and firmware.

Exit codes: ``simulator.cli.exits.EXIT_CODES`` (0 success, 1 the answer is no, 2 invalid input, ...).
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from firmware.app.console import EventPrinter
from firmware.config.catalog import load_catalog
from firmware.config.machine import MachineSetup, load_machine
from firmware.config.source import read_yaml
from firmware.controller.diagram import mermaid
from firmware.errors import InputError, VendingError
from firmware.reporting.mqtt import BrokerAddress
from simulator.cli.broker import broker_app
from simulator.cli.cards import card_app
from simulator.cli.commands import cmd_app
from simulator.cli.connection import CaFile, CertFile, CertKey, Password, Username, run_broker, start_world
from simulator.cli.exits import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    fail,
    refuse_empty_paths,
)
from simulator.cli.fleet import fleet
from simulator.cli.help_format import drop_flag_placeholders
from simulator.cli.inspection import export_app
from simulator.cli.inspection import register as register_inspection
from simulator.cli.issuer import issuer_app
from simulator.cli.issuer_tools import issuer_tool_app
from simulator.cli.keys import keys_app
from simulator.cli.party_views import print_party_views
from simulator.cli.privacy import privacy_app
from simulator.cli.readers import reader_app, serve
from simulator.cli.reporting import backend_app
from simulator.cli.rules import refused_slots, rules_app
from simulator.cli.run_summary import route_of, summary
from simulator.cli.scaffold import init
from simulator.cli.school import backend_school, school_app
from simulator.inspection.machine_db import reuse_problems
from simulator.paths import SCENARIOS
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import run_scenario
from simulator.scenarios.schema import load_scenario, with_payment
from simulator.scenarios.tap_sources import tap_source_for, unreadable_cards

USER_HELP = """The campus vending machine emulator: run school days and scenarios, attach card readers,
report to the vendor, issuer and school backends, and inspect or export a machine's books.

Start with `vending demo`. Exit codes:\n\n""" + "\n\n".join(
    f"{code}: {meaning}" for code, meaning in EXIT_CODES.items()
)

drop_flag_placeholders()
app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    no_args_is_help=True,
    help=USER_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"vending {version('campus-vending')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options that apply before any command."""


app.add_typer(keys_app, name="keys")
app.add_typer(card_app, name="card")
app.add_typer(cmd_app, name="cmd")
app.add_typer(broker_app, name="broker")
app.command("init")(init)
app.add_typer(backend_app, name="backend")
app.command("fleet")(fleet)
app.add_typer(rules_app, name="rules")
app.add_typer(reader_app, name="reader")
app.add_typer(privacy_app, name="privacy")
app.add_typer(school_app, name="school")
register_inspection(app)
app.add_typer(export_app, name="export")
backend_app.command("school")(backend_school)
backend_app.add_typer(issuer_app, name="issuer")
app.add_typer(issuer_tool_app, name="issuer")
app.command("serve")(serve)
err = Console(stderr=True)
BROKER_HELP = (
    "Report over MQTT: `embedded` (in-process amqtt on 127.0.0.1, the default), `mosquitto` "
    "(start Debian's mosquitto on a free port), `none` (no reporting), or mqtt://host:port."
)


@app.command()
def run(
    scenario_file: Annotated[
        Path | None, typer.Argument(metavar="[SCENARIO]", help="Scenario YAML (see README: Scenario format).")
    ] = None,
    script: Annotated[Path | None, typer.Option("--script", help="The scenario, as an option.")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--continue",
            help="Run on a --state-dir that already holds books this scenario did not make (another run's, "
            "other cards, or later ones: then the machine is out of order until the scenario's time reaches "
            "them); refused without it.",
        ),
    ] = False,
    machine: Annotated[Path | None, typer.Option(help="Machine config; overrides the scenario's `machine:`.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per event line, with `t` and `event`.")
    ] = False,
    state_dir: Annotated[Path | None, typer.Option(help="Keep the machine's state here (default: a temp dir).")] = None,
    broker: Annotated[str, typer.Option(help=BROKER_HELP)] = "embedded",
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
    reader: Annotated[
        str,
        typer.Option(
            help="Where taps come from: `virtual` (the default); `emulate:pn532`, `emulate:rdm6300` or "
            "`emulate:line` (the device's emulator on a pty, read by the real driver); or a real reader URL "
            "such as pn532:/dev/ttyUSB0, which asks you to tap each card (virtual time waits)."
        ),
    ] = "virtual",
    payment: Annotated[
        str | None,
        typer.Option(
            help="Where cards' money lives for this run: `card` (the purse on each card, debited through the "
            "reader), `account` (accounts at the run's issuer backend) or `machine_wallet`; default: the "
            "scenario's, else the machine config's."
        ),
    ] = None,
) -> None:
    """Run a scripted tap sequence headless on virtual time.

    Prints one line per event (virtual timestamp, event, details), or with --json one JSON object per
    line, then a summary: sales, revenue, denials by reason, expectations passed and failed.
    Exit 0 when every expectation held, 1 when any failed (each printed with expected vs actual),
    2 for invalid input.
    """
    if (scenario_file is None) == (script is None):
        fail("give the scenario once: `vending run FILE` or `vending run --script FILE`")
    script = scenario_file or script
    assert script is not None
    try:
        scenario = load_scenario(script)
        if machine is not None:
            from dataclasses import replace

            scenario = replace(scenario, machine=load_machine(machine))
        if payment is not None:
            scenario = with_payment(scenario, payment)
    except (InputError, VendingError) as exc:
        fail(exc)
    if scenario.machine.config.payment.mode == "card" and reader != "virtual":
        fail(f"--reader {reader}: a run with the purse on the card reads it through the virtual reader")
    if broker == "none" and scenario.machine.config.payment.mode == "account":
        fail("payment account: the machine asks the issuer's backend over MQTT; run without --broker none")
    if broker == "none" and (step := scenario.reporting_step()) is not None:
        fail(
            InputError(
                scenario.source,
                step.line,
                f"steps.{step.index}.{step.kind}",
                "this step needs MQTT reporting; run without --broker none",
            )
        )
    try:
        taps = tap_source_for(reader, lambda text: typer.echo(text, err=True))
    except VendingError as exc:
        fail(exc)
    if state_dir is not None and not resume:
        uids = {card.uid for card in scenario.cards.values()}
        problems = reuse_problems(state_dir, scenario.machine.config.id, scenario.start, uids)
        if problems:
            fail(
                f"--state-dir {state_dir}: {'; '.join(problems)}. Give a new --state-dir for this scenario, "
                "or --continue to run on these books on purpose"
            )
    unreadable = unreadable_cards(reader, {name: card.uid for name, card in scenario.cards.items()})
    if unreadable:
        fail(f"--reader {reader}: it cannot read card(s) {', '.join(unreadable)} (uid length)")
    printer = EventPrinter(as_json)
    with reporting(broker, run_broker(broker, username, password, ca, cert, cert_key)) as world:
        result = run_scenario(scenario, state_dir, printer, attach=world, taps=taps)
        delivered = world.vendor.store.count() if world and world.vendor else None
        route = route_of(world)
    summary(result, as_json, delivered, route)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


@contextmanager
def reporting(
    broker: str, address: BrokerAddress | None = None, keep: Path | None = None
) -> Iterator[ReportingWorld | None]:
    """Broker and backends for the run, in a temp dir unless ``keep`` names one; None for ``--broker none``.

    ``address``: how every party of the run reaches a URL broker (credentials, TLS files).
    """
    if broker == "none":
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="vending-world-") as tmp:
        guest = secrets.token_hex(3) if address is not None else None  # someone else's broker
        world = start_world(ReportingWorld(keep or Path(tmp), broker, broker_address=address, guest_id=guest), broker)
        typer.echo(world.describe_broker(), err=True)
        try:
            yield world
        finally:
            world.stop()


def _kind_of(path: Path) -> str:
    data = read_yaml(path).data
    if isinstance(data, dict):
        if "steps" in data:
            return "scenario"
        if "products" in data:
            return "catalog"
        if "rules" in data and "levels" in data:
            return "rule set"
    return "machine"


def _yaml_files(paths: list[Path]) -> list[Path]:
    """Each file as given; a directory stands for the YAML files in it and below (``vending init``'s folder)."""
    found: list[Path] = []
    for path in paths:
        found += sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")]) if path.is_dir() else [path]
    return found


def _load_rule_set(path: Path) -> object:
    from firmware.config.rules import RuleSet
    from firmware.config.source import validate

    return validate(RuleSet, read_yaml(path))


@app.command()
def check(
    files: Annotated[
        list[Path],
        typer.Argument(help="Machine configs, catalogs, rule sets or scenarios; a directory: its YAML files."),
    ],
    strict: Annotated[
        bool,
        typer.Option(
            help="Fail (exit 2) when a machine's slot holds a product its own food rules refuse; otherwise only warn."
        ),
    ] = False,
) -> None:
    """Validate files; exit 2 on the first invalid one, printing FILE:LINE: field.path: reason."""
    for path in _yaml_files(files):
        try:
            kind = _kind_of(path)
            loaded = {
                "scenario": load_scenario,
                "catalog": load_catalog,
                "machine": load_machine,
                "rule set": _load_rule_set,
            }[kind](path)
        except InputError as exc:
            fail(exc)
        warnings = refused_slots(loaded) if isinstance(loaded, MachineSetup) else []
        for warning in warnings:
            typer.echo(f"{path}: warning: {warning}", err=True)
        if warnings and strict:
            raise typer.Exit(EXIT_INPUT)
        typer.echo(f"{path}: ok ({kind})")


@app.command()
def diagram() -> None:
    """Print the controller's state machine as a Mermaid stateDiagram-v2."""
    typer.echo(mermaid(), nl=False)


@app.command()
def demo(
    scenario: Annotated[Path, typer.Option(help="Scenario to run.")] = SCENARIOS / "demo-school-day.yaml",
    broker: Annotated[str, typer.Option(help=BROKER_HELP)] = "embedded",
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:
    """Run a scripted morning with an embedded broker and both backends; show what each party learned."""
    try:
        loaded = load_scenario(scenario)
    except InputError as exc:
        fail(exc)
    if broker == "none":
        loaded, dropped = loaded.without_reporting()
        for step in dropped:
            what = f"{step.kind}: {step.value}" if step.kind != "expect" else "expect outbox/backend_sales"
            typer.echo(f"--broker none: {loaded.path}:{step.line}: {what} skipped (needs reporting)", err=True)
    with reporting(broker, run_broker(broker, username, password, ca, cert, cert_key)) as world:
        result = run_scenario(loaded, None, EventPrinter(False), attach=world)
        delivered = world.vendor.store.count() if world and world.vendor else None
        summary(result, False, delivered)
        if world is not None:
            print_party_views(world, loaded)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


def main() -> None:
    """The ``vending`` entry point: every way out is one of ``EXIT_CODES`` (README: Exit codes).

    Typer already turns usage errors into 2 and Ctrl-C into 130; what reaches here is ours to map.
    """
    import traceback

    try:
        refuse_empty_paths(typer.main.get_command(app))(prog_name="vending")
    except VendingError as exc:  # a problem with the input or the environment, not a crash
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    except OSError as exc:  # a file, port or device the command was pointed at
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    except Exception as exc:  # a bug: say so, with where, rather than a bare traceback and an unlisted code
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (exit {EXIT_INTERNAL}; please report)", err=True)
        traceback.print_exc()
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
