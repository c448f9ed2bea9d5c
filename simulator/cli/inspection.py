"""``vending status|stock|sales|journal --state-dir DIR``: a machine's state, read-only, as a table, JSON or CSV."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from firmware.errors import VendingError
from simulator.cli.exits import day_option, fail, write_out
from simulator.safe_output import dex_field, write_csv

StateDir = Annotated[
    Path, typer.Option(help="The machine's state dir (holds machine.db); read-only, safe while it runs.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON: objects with snake_case keys and real types.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print CSV to stdout, a header row always (even with no rows).")]


def _cell(value: Any) -> str:
    """A value as one CSV or table cell: objects as compact JSON, booleans as yes/no for people."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "" if value is None else str(value)


def show(
    state_dir: Path,
    title: str,
    columns: tuple[str, ...],
    query: Callable[[Any], list[dict[str, Any]]],
    as_json: bool,
    as_csv: bool,
) -> None:
    """Run ``query`` on the machine database and print its rows: a table, JSON objects, or CSV (header always)."""
    rows = _read(state_dir, query, as_json, as_csv)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif as_csv:
        write_csv(sys.stdout, columns, ([_cell(row[column]) for column in columns] for row in rows))
    else:
        table = Table(title=title if rows else f"{title}: none")
        for column in columns:
            table.add_column(column, justify="right" if rows and isinstance(rows[0][column], int) else "left")
        for row in rows:
            table.add_row(*(_yes_no(row[column]) for column in columns))
        Console(width=140).print(table)


def _read(state_dir: Path, query: Callable[[Any], Any], as_json: bool, as_csv: bool) -> Any:
    """``query`` on the machine database, read-only; exit 2 for a bad format choice or state dir."""
    from simulator.inspection.machine_db import read_only

    if as_json and as_csv:
        fail("--json and --csv: choose one")
    try:
        with read_only(state_dir) as conn:
            return query(conn)
    except VendingError as exc:
        fail(exc)


def _yes_no(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else _cell(value)


def status(state_dir: StateDir, as_json: AsJson = False, as_csv: AsCsv = False) -> None:
    """What the machine is and how far its books and reports have got (--json: one object)."""
    from simulator.inspection.machine_db import status as query

    facts = _read(state_dir, query, as_json, as_csv)
    if as_json:
        typer.echo(json.dumps(facts, ensure_ascii=False, indent=1))
    elif as_csv:
        write_csv(sys.stdout, facts, [[_cell(value) for value in facts.values()]])
    else:
        table = Table(title=f"Machine status: {state_dir}")
        table.add_column("what")
        table.add_column("value")
        for key, value in facts.items():
            table.add_row(key.replace("_", " "), _cell(value) if value is not None else "none yet")
        Console(width=140).print(table)


def stock(state_dir: StateDir, as_json: AsJson = False, as_csv: AsCsv = False) -> None:
    """Stock per slot, with capacity, price and whether the slot sells."""
    from simulator.inspection.machine_db import STOCK_COLUMNS
    from simulator.inspection.machine_db import stock as query

    show(state_dir, "Stock", STOCK_COLUMNS, query, as_json, as_csv)


def sales(
    state_dir: StateDir,
    day: Annotated[str | None, typer.Option(help="Only this local day (YYYY-MM-DD).")] = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Every vend, oldest first: time, transaction, slot, product, price, status, refunded (never the card)."""
    from simulator.inspection.machine_db import SALES_COLUMNS
    from simulator.inspection.machine_db import sales as query

    if day is not None:
        day_option(day)
    show(state_dir, f"Sales {day or ''}".strip(), SALES_COLUMNS, lambda conn: query(conn, day), as_json, as_csv)


def journal(
    state_dir: StateDir,
    since: Annotated[str | None, typer.Option(help="Only entries from this time or day (ISO 8601).")] = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """The machine's journal, oldest first (entries past the retention period are gone)."""
    from simulator.inspection.machine_db import JOURNAL_COLUMNS
    from simulator.inspection.machine_db import journal as query

    if since is not None:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since: expected an ISO time or day such as 2026-03-02T12:00+08:00, got {since!r}")
    show(state_dir, "Journal", JOURNAL_COLUMNS, lambda conn: query(conn, since), as_json, as_csv)


def register(app: typer.Typer) -> None:
    for command in (status, stock, sales, journal):
        app.command(command.__name__)(command)


export_app = typer.Typer(no_args_is_help=True, help="Export a machine's audit data for operator systems.")


@export_app.command("dex")
def export_dex(
    state_dir: StateDir,
    day: Annotated[
        str | None, typer.Option(help="The audited day (the interval; default: the last trading day).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the DEX file here (default: standard output).")] = None,
    location: Annotated[str, typer.Option(help="ID104, the machine's location (e.g. the school code).")] = "",
) -> None:
    """An EVA-DTS 6.1 DEX/UCS audit file: cumulative and interval counters, events, G85 CRC (docs/dex.md)."""
    from firmware.journal.dex import audit_from, render
    from simulator.inspection.machine_db import machine_zone, read_only

    if day is not None:
        day_option(day)
    try:
        dex_field(location, "--location")
        with read_only(state_dir) as conn:
            audited = day or conn.execute("SELECT MAX(local_day) FROM vends").fetchone()[0] or date.today().isoformat()
            read_at = datetime.now().astimezone(machine_zone(conn))  # in the machine's zone, like its trading days
            text = render(audit_from(conn, audited, read_at, location))
    except VendingError as exc:
        fail(exc)
    if out is None:
        sys.stdout.write(text)
    else:
        write_out(out, text)
        typer.echo(f"DEX audit of {audited} -> {out}")
