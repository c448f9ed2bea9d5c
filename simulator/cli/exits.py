"""The one way a command refuses its input: the reason on stderr (file, field and why), exit status 2."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(reason: object) -> NoReturn:
    """Print ``reason`` (a message or the exception carrying it) and exit 2; nothing was changed."""
    typer.echo(str(reason), err=True)
    raise typer.Exit(2) from None
