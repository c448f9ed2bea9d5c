"""The one way a command refuses its input: the reason on stderr (file, field and why), exit status 2."""

from __future__ import annotations

from datetime import date
from typing import NoReturn

import typer


def fail(reason: object) -> NoReturn:
    """Print ``reason`` (a message or the exception carrying it) and exit 2; nothing was changed."""
    typer.echo(str(reason), err=True)
    raise typer.Exit(2) from None


def day_option(value: str, option: str = "--day") -> date:
    """A YYYY-MM-DD option as a date, or exit 2 naming the option and the value."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected YYYY-MM-DD, got {value!r}")
