"""``vending rules check``: a verdict per catalog product against the campus food rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from firmware.config.catalog import load_catalog
from firmware.config.machine import MachineSetup
from firmware.config.rules import available, find_rulesets
from firmware.config.source import listed_twice
from firmware.domain import SCHOOL_LEVELS
from firmware.errors import InputError
from firmware.policy.rules import evaluate
from simulator.cli.exits import EXIT_FAILED, EXIT_INPUT, EXIT_OK
from simulator.paths import CONFIGS

rules_app = typer.Typer(no_args_is_help=True, help="Campus food rules (the packaged configs/rules/).")
DEFAULT_RULES = "tw-moe-2016,tpe-no-bottled-water"


@rules_app.command("check")
def rules_check(
    catalog: Annotated[
        Path, typer.Argument(help="A product catalog YAML (default: the campus catalog that ships with vending).")
    ] = CONFIGS / "products" / "campus.yaml",
    level: Annotated[str, typer.Option(help="elementary | junior_high | senior_high")] = "junior_high",
    rules: Annotated[
        str, typer.Option(help="Comma-separated rule sets: packaged ones by name, a school's own by its file.")
    ] = DEFAULT_RULES,
    as_json: Annotated[bool, typer.Option("--json", help="JSON: [{product, allowed, violations}].")] = False,
) -> None:
    """Print allowed or refused for every product, with every violated rule, its value and limit.

    Exit 0 when everything is allowed, 1 when something is refused, 2 for invalid input.
    """
    ids = [r.strip() for r in rules.split(",") if r.strip()]
    if level not in SCHOOL_LEVELS:
        typer.echo(f"--level: unknown level {level!r}; use elementary, junior_high or senior_high", err=True)
        raise typer.Exit(EXIT_INPUT)
    if not ids:  # every product "allowed" against no rules at all, exit 0: a machine config refuses this too
        typer.echo(f"--rules: give at least one rule set; known: {', '.join(available())}", err=True)
        raise typer.Exit(EXIT_INPUT)
    if (twice := listed_twice(ids)) is not None:
        typer.echo(f"--rules: rule set {twice!r} is listed twice", err=True)
        raise typer.Exit(EXIT_INPUT)
    try:
        rulesets = find_rulesets(ids, Path.cwd())  # a school's own file too, as a machine config names it
        if isinstance(rulesets, tuple):
            typer.echo(f"--rules: {rulesets[1]}", err=True)
            raise typer.Exit(EXIT_INPUT)
        products = load_catalog(catalog).products
    except InputError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INPUT) from None
    verdicts = [evaluate(pid, product, level, rulesets) for pid, product in products.items()]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "product": v.product,
                        "allowed": v.allowed,
                        "violations": [{"rule": x.rule, "value": x.value, "limit": x.limit} for x in v.violations],
                    }
                    for v in verdicts
                ],
                ensure_ascii=False,
            )
        )
    else:
        for verdict in verdicts:
            status = "allowed" if verdict.allowed else "REFUSED"
            typer.echo(
                f"{verdict.product:<28} {status}" + "".join(f"\n    {x.en}  /  {x.zh}" for x in verdict.violations)
            )
        refused = sum(not v.allowed for v in verdicts)
        typer.echo(f"{len(verdicts) - refused} allowed, {refused} refused ({level}; {', '.join(ids)})")
    raise typer.Exit(EXIT_OK if all(v.allowed for v in verdicts) else EXIT_FAILED)


def refused_slots(setup: MachineSetup) -> list[str]:
    """`vending check` warnings: slots holding products the machine's own rules refuse."""
    config = setup.config
    rulesets = setup.rulesets
    warnings = []
    for code, slot in config.slots.items():
        verdict = evaluate(slot.product, setup.catalog.products[slot.product], config.school.level, rulesets)
        if not verdict.allowed and not slot.refused_on_purpose:
            warnings.append(
                f"slot {code} holds {slot.product}, refused by {', '.join(x.en for x in verdict.violations)}"
            )
    return warnings
