"""The parts of README.md and docs/ that are facts about the code, generated from it.

Each block stands between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` and is written by
the function that reads the code (or the measurement) it describes: the command reference from
the CLI's own definitions, the exit codes from ``EXIT_CODES``, the crash matrix from
``crashrun.matrix()``, the fleet's generated machines from ``simulator.fleet.model``, the soak's
last run from ``bench/results.json``. ``tests/test_docs.py`` fails when a block differs from what
its function writes now; ``python -m simulator.docgen`` rewrites them all.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from typing import Any

from simulator.paths import ROOT
from simulator.safe_output import between_markers

Generator = Callable[[], str]


def begin(name: str) -> str:
    return f"<!-- generated: {name} (python -m simulator.docgen) -->"


def end(name: str) -> str:
    return f"<!-- end: {name} -->"


replace_between = between_markers  # bench/compare.py's name for it


def current(doc: str, name: str) -> str | None:
    if begin(name) not in doc:
        return None
    return doc.split(begin(name) + "\n", 1)[1].split(end(name), 1)[0]


# ---- the command reference ---------------------------------------------------------------------
def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            if command.callback is not None and command.params:  # a group that also runs (e.g. `backend vendor`)
                yield (*path, name), command
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _usage(command: Any) -> str:
    pieces = []
    for param in command.params:
        if param.name == "help" or getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            metavar = param.metavar or param.name.upper()
            pieces.append(f"{metavar}..." if param.nargs == -1 else metavar)
            continue
        option = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            shown = f"{option}/{param.secondary_opts[0]}" if param.secondary_opts else option
        else:
            shown = f"{option} {param.metavar or param.name.upper()}"
        pieces.append(shown if param.required else f"[{shown}]")
    return " ".join(pieces)


def _summary(command: Any) -> str:
    text = (command.help or "").strip().split("\n\n", 1)[0]
    return " ".join(text.split())


def cli_reference() -> str:
    """One row per command: its usage, built from its options, and the first paragraph of its help."""
    import typer.main

    from simulator.cli import app

    rows = ["| command | what it does |", "|---|---|"]
    for path, command in _commands(typer.main.get_command(app)):
        usage = " ".join(("vending", *path, _usage(command))).strip().replace("|", "\\|")
        rows.append(f"| `{usage}` | {_summary(command).replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


def exit_codes() -> str:
    from simulator.cli.exits import EXIT_CODES

    rows = ["| exit | meaning |", "|---:|---|"]
    rows += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(rows) + "\n"


# ---- reliability -------------------------------------------------------------------------------
def crash_matrix() -> str:
    from firmware.crashpoints import POINTS
    from simulator.reliability.crashrun import TEARS, cases, matrix, tear_cases

    rows = ["| kind | crash points (arrivals crashed at) | cases |", "|---|---|---:|"]
    for kind, points in matrix().items():
        listed = ", ".join(f"`{point}`" + (f" ×{most}" if most > 1 else "") for point, most in points.items())
        rows.append(f"| {kind} | {listed} | {sum(points.values())} |")
    reached = set().union(*(set(points) for points in matrix().values()))
    rows.append(
        f"\n{len(cases())} cases in all, each a real process crashed once; they reach {len(reached)} of the "
        f"{len(POINTS)} declared crash points."
    )
    pulls = ", ".join(f"{kind} after each of its {writes} writes" for kind, writes in TEARS.items())
    rows.append(
        f"\nAnd {len(tear_cases())} tear points: the purse card pulled from the reader ({pulls}); the machine "
        "lives on, the card's next tap settles what was left, and the same invariants hold (nothing vended "
        "on a debit the card did not confirm)."
    )
    return "\n".join(rows) + "\n"


def soak_last_run() -> str:
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    soak = results.get("soak")
    if soak is None:
        return "No full soak recorded yet: run `make soak`.\n"
    machines = soak["machines"]
    every = all(entry["ok"] for entry in machines.values())
    return (
        f"Last full run (`make soak`, recorded in `bench/results.json`): **{soak['transactions']:,} transactions "
        f"on {len(machines)} machines, {soak['broker_outages']} broker outages (longest {soak['longest_outage_s']} s), "
        f"{soak['backend_crashes']} backend crash(es), {soak['wall_s']} s; "
        + (
            "every machine: produced = stored = acked, 0 gaps, 0 duplicates, outbox empty.**"
            if every
            else "**some machine failed its check** (see bench/results.json)."
        )
        + "\n"
    )


# ---- the fleet ---------------------------------------------------------------------------------
def fleet_model() -> str:
    from firmware.config.catalog import load_catalog
    from simulator.fleet import model
    from simulator.fleet.runner import CATALOG

    catalog = load_catalog(CATALOG)
    stockable = model.stockable(catalog)
    levels = ", ".join(level.replace("_", " ") for level in model.LEVELS)
    refused = sorted(set(catalog.products) - set().union(*map(set, stockable.values())))
    per_level = ", ".join(f"{level.replace('_', ' ')} {len(products)}" for level, products in stockable.items())
    lockout = f"{model.SNACK_LOCKOUT['from']}–{model.SNACK_LOCKOUT['to']}"
    capacities = ", ".join(map(str, model.CAPACITIES[:-1])) + f" or {model.CAPACITIES[-1]}"
    text = (
        f'Machine *i* draws from `random.Random(f"{{seed}}:{{i}}")` (`simulator/fleet/model.py`): a school level '
        f"({levels}), the food rules every Taipei school machine carries (`rules: {list(model.FLEET_RULES)}`), "
        f"and up to {len(model.SLOT_CODES)} slots ({model.SLOT_CODES[0]}–{model.SLOT_CODES[-1]}) filled, in a "
        f"shuffled order, with the catalog's products that level's rules allow ({per_level} of the catalog's "
        f"{len(catalog.products)}; refused everywhere: {', '.join(refused) or 'none'}), so every generated "
        f"machine passes `vending check --strict`. Capacities are {capacities} and the starting stock between "
        f"half full and full; the student snack lockout runs {lockout}, and the route driver refills every "
        f"slot at {model.RESTOCK_AT:%H:%M}.\n\n"
        "| who | how many purchases a day | when |\n|---|---|---|\n"
    )
    windows = ", ".join(
        f"{name} {start:%H:%M}–{stop:%H:%M} ({share:.0%})" for name, start, stop, share in model.WINDOWS
    )
    text += (
        f"| students (`--students`) | Poisson, mean {model.STUDENT_PURCHASES_PER_DAY} | {windows}, "
        "uniform within the window |\n"
        f"| staff (1 per {round(1 / model.STAFF_PER_STUDENT)} students) | Poisson, mean "
        f"{model.STAFF_PURCHASES_PER_DAY} | 07:30–17:00 uniform |\n\n"
        f"Each visit picks a slot uniformly; {model.CARD_FIRST_SHARE:.0%} tap first, the rest select first. "
        f"What goes wrong, on purpose: {model.LOW_BALANCE_SHARE:.0%} of student cards hold 0–20 TWD "
        f"(insufficient funds), {model.UNKNOWN_CARD_SHARE:.0%} of taps are by cards the machine does not know, "
        f"{model.JAM_SHARE:.1%} of vends jam (refund), {model.WALK_AWAY_SHARE:.0%} of people select and walk "
        "away (selection timeout); slots run empty (sold out) and snacks meet the lunchtime lockout; people "
        "who are refused give up (cancel).\n"
    )
    return text


BLOCKS: dict[str, tuple[str, Generator]] = {
    "command-reference": ("README.md", cli_reference),
    "exit-codes": ("README.md", exit_codes),
    "crash-matrix": ("docs/reliability.md", crash_matrix),
    "soak-last-run": ("docs/reliability.md", soak_last_run),
    "fleet-model": ("docs/scaling.md", fleet_model),
}


def stale() -> list[str]:
    """Blocks whose text in the docs is not what their generator writes now (or whose markers are missing)."""
    found = []
    for name, (doc, generate) in BLOCKS.items():
        if current((ROOT / doc).read_text(), name) != generate():
            found.append(f"{doc}: {name}")
    return found


def write() -> list[str]:
    written = []
    for name, (doc, generate) in BLOCKS.items():
        path = ROOT / doc
        text = path.read_text()
        new = between_markers(text, begin(name), end(name), generate(), doc)
        if new != text:
            path.write_text(new)
            written.append(f"{doc}: {name}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is out of date; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        print("\n".join(out_of_date) or "every generated block is up to date")
        return 1 if out_of_date else 0
    print("\n".join(write()) or "nothing to change")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
