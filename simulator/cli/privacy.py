"""``vending privacy``: the collusion attack the design is measured against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

privacy_app = typer.Typer(no_args_is_help=True, help="Privacy: the vendor + issuer attack, measured.")


@privacy_app.command("attack")
def attack(
    days: Annotated[int, typer.Option(min=1, max=200, help="School days (Mon-Fri) of one term.")] = 20,
    students: Annotated[int, typer.Option(min=1, max=5000, help="Students at the machine's school.")] = 300,
    settlement: Annotated[str, typer.Option(help="per_card, day_total, or both.")] = "both",
    design: Annotated[
        str,
        typer.Option(
            help="visit (what the machine sends); visit-weekly, visit-daily, day, term (earlier, rebuilt); all."
        ),
    ] = "visit",
    seed: Annotated[int, typer.Option(help="Same seed, same students and days.")] = 1,
    requesters: Annotated[
        int, typer.Option(min=0, max=100, help="Students whose rights requests the vendor and issuer watch (0: none).")
    ] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
) -> None:
    """Pool the vendor's and the issuer's records of a simulated term and count the cards the join pins.

    Runs every school day through the real machine, reads each party's view from its outbox, then
    joins them as hard as we know how (per-day candidates, exclusion of absent cards, elimination of
    pinned cards, amount and count matching). Prints the share of buying cards pinned after 1, 5, 20
    and 100 days (those within --days); then what reports give away of a sale's minute, and what the
    school's access and erasure requests show the two parties.
    """
    from simulator.cli.exits import fail
    from simulator.privacy.report import SETTLEMENTS, cell, measure, observed
    from simulator.privacy.term import DESIGNS

    settlements = SETTLEMENTS if settlement == "both" else (settlement,)
    designs = tuple(DESIGNS) if design == "all" else (design,)
    if not set(settlements) <= set(SETTLEMENTS):
        fail(f"--settlement: expected per_card, day_total or both, got {settlement!r}")
    if not set(designs) <= set(DESIGNS):
        fail(f"--design: expected {', '.join(DESIGNS)} or all, got {design!r}")
    figures = measure(days, students, seed, settlements, designs, requesters)
    if as_json:
        typer.echo(json.dumps(figures))
        return
    table = Table(title=f"Cards pinned by a vendor + issuer join: {students} students, {days} school days")
    table.add_column("settlement")
    table.add_column("pseudonyms")
    for entry in figures["runs"][0]["after"]:
        table.add_column(f"after {entry['days']} d", justify="right")
    for run in figures["runs"]:
        table.add_row(run["settlement"], run["design"], *(cell(after) for after in run["after"]))
    Console(width=120).print(table)
    typer.echo(observed(figures).strip("\n"))


@privacy_app.command("manifest")
def manifest_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as one JSON object.")] = False,
    write: Annotated[
        Path | None, typer.Option(help="Replace the manifest section between the markers in this Markdown file.")
    ] = None,
) -> None:
    """What each party receives, field by field, with retention and legal basis, from the message schemas."""
    from firmware.errors import VendingError
    from simulator.cli.exits import fail
    from simulator.privacy.manifest import manifest, markdown
    from simulator.privacy.manifest import write as write_doc

    try:
        document = manifest()
    except ValueError as exc:
        fail(exc)
    if write is not None:
        try:
            write_doc(write, document)
        except VendingError as exc:
            fail(exc)
        typer.echo(f"wrote the manifest into {write}")
    elif as_json:
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        typer.echo(markdown(document))
