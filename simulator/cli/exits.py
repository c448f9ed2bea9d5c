"""Exit statuses, and the one way a command refuses its input: the reason on stderr, exit status 2.

``EXIT_CODES`` is the documented list (README, ``vending --help``); ``simulator.cli.main`` maps every
exception that reaches it onto one of them, so a script driving ``vending`` never sees an unlisted code.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path, PurePath
from typing import Any, NoReturn, get_args

import typer

from firmware.domain import CARD_UID, CARD_UID_RULE, machine_id_refusal
from firmware.errors import EMPTY_PATH, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, VendingError
from simulator.backends.party_file import url_refusal
from simulator.safe_output import write_inside

EXIT_FAILED = 1  # the run worked and its answer is no: an expectation failed, a report was lost, a command refused
EXIT_NO_ANSWER = 3  # `cmd send`: the machine did not answer in time

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the answer is no: a scenario expectation failed, a fleet report was not delivered, a "
    "remote command was refused, a product is refused by the food rules (`rules check`)",
    EXIT_INPUT: "invalid input or environment: the message names the file, field or line, or the option, and why",
    EXIT_NO_ANSWER: "`cmd send`: no answer from the machine in time",
    EXIT_INTERNAL: "internal error (a bug): the message and traceback say where; nothing is half-written",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


def fail(reason: object) -> NoReturn:
    """Print ``reason`` (a message or the exception carrying it) and exit 2; nothing was changed."""
    typer.echo(str(reason), err=True)
    raise typer.Exit(EXIT_INPUT) from None


def refuse_empty_paths(command: Any) -> Any:
    """Every path that ``command`` and its subcommands take refuses an empty value, before anything runs.

    pathlib reads ``Path("")`` as '.', so ``--state-dir "$UNSET"`` put a machine's books, a term key or a
    party's private key in the current directory without a word. Typer's parameters carry the annotation
    they were declared with, which says which take paths.
    """
    for param in command.params:
        if _takes_paths(param):
            _refuse_empty(param)
    for sub in getattr(command, "commands", {}).values():
        refuse_empty_paths(sub)
    return command


def _takes_paths(param: Any) -> bool:
    """From the annotation typer (0.29 on, pyproject's floor) keeps on each parameter; tests run the commands."""
    descriptor = getattr(param, "type_descriptor", None)
    return descriptor is not None and _names_paths(descriptor.annotation)


def _names_paths(annotation: object) -> bool:
    """Whether a parameter of this annotation takes paths (``Path``, ``Path | None``, ``list[Path]``)."""
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return True
    return any(_names_paths(inner) for inner in get_args(annotation))


def _refuse_empty(param: Any) -> None:
    process = param.process_value

    def process_value(ctx: Any, value: Any) -> Any:
        given = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(one, str) and not one for one in given):
            raise typer.BadParameter(EMPTY_PATH, ctx=ctx, param=param)
        return process(ctx, value)

    param.process_value = process_value


def stop_on_sigterm() -> None:
    """SIGTERM ends the command as its own end does: its ``finally`` blocks run, exit 0.

    SIGTERM's default action killed the process where it stood: an emulated reader left its ``--link``
    pointing at a pseudo-terminal that the next terminal opened on the box may be given.
    """

    def stop(_number: int, _frame: object) -> None:
        raise typer.Exit(EXIT_OK)

    signal.signal(signal.SIGTERM, stop)


def new_machine_id(machine: str, option: str) -> str:
    """A machine's id as a machine is made or enrolled under it, or exit 2 naming the option and why not."""
    if (refusal := machine_id_refusal(machine)) is not None:
        fail(f"{option}: {machine!r}: {refusal}")
    return machine


def machine_ids(value: str, option: str = "--machines") -> list[str]:
    """Comma-separated machine ids, each one valid and given once, or exit 2 naming the option and the id."""
    ids = [new_machine_id(machine, option) for machine in (part.strip() for part in value.split(",")) if machine]
    if twice := next((machine for machine in ids if ids.count(machine) > 1), None):
        fail(f"{option}: {twice} is given twice")
    return ids


def check_card_uids(uids: Iterable[str], option: str = "--card") -> None:
    """Exit 2 naming the first of ``uids`` that is not a card's uid (``firmware.domain.CARD_UID``, any case)."""
    if (bad := next((uid for uid in uids if not CARD_UID.fullmatch(uid.upper())), None)) is not None:
        fail(f"{option} {bad!r}: expected {CARD_UID_RULE} (a card's uid)")


def day_option(value: str, option: str = "--day") -> date:
    """A YYYY-MM-DD option as a date, or exit 2 naming the option and the value."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected YYYY-MM-DD, got {value!r}")


def seconds_option(value: float, option: str = "--wait") -> float:
    """A number of seconds to wait, or exit 2: a negative wait was an internal error, ``nan`` waited forever."""
    if not math.isfinite(value) or value < 0:
        fail(f"{option}: expected a number of seconds from 0, got {value}")
    return value


def existing_db(db: Path, made_by: str) -> None:
    """Exit 2 unless ``db`` is there, naming what makes it.

    A command that reads or changes a party's records made an empty database at a mistyped path and
    then answered from it ("not on the roster", "no account").
    """
    if not db.is_file():
        fail(f"--db {db}: no such file ({made_by} makes it)")


def sqlite_file(whose: str) -> Callable[[Path], Path]:
    """A typer callback for an ``--db`` that is ``whose`` SQLite file: a database URL is refused before any use."""

    def check(value: Path) -> Path:
        if value is not None and (refusal := url_refusal(value, whose)) is not None:
            fail(refusal)
        return value

    return check


def unwritable(where: object, exc: OSError) -> NoReturn:
    """Exit 2: ``where`` (an option and its path, or a path) cannot be written, and why; nothing was written."""
    fail(f"{where}: cannot write: {exc.strerror or exc}; nothing written")


def write_out(path: Path, text: str, option: str = "--out") -> None:
    """Write a command's file whole (replacing one there), or exit 2 naming the option, the path and why not.

    Never through a symlink (it wrote through one to its target), and a directory that is not there is named,
    not made.
    """
    if not path.parent.is_dir():
        fail(f"{option} {path}: {path.parent} is not a directory; nothing written")
    try:
        write_inside(path.parent, path.name, text, replace=True)
    except VendingError as exc:
        fail(f"{option} {exc}")
    except OSError as exc:
        unwritable(f"{option} {path}", exc)
