"""``vending keys ...``: the term key and the issuer's key pair, created 0600 and never overwritten by accident."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from firmware.errors import VendingError
from firmware.identity.keys import key_path, read_key, write_key
from firmware.identity.secretfile import write_secret
from firmware.reporting.sealed import generate_keypair

keys_app = typer.Typer(no_args_is_help=True, help="The school's term key (pseudonyms) and the issuer's key pair.")

StateDir = Annotated[Path, typer.Option(help="The machine's state dir (holds term_key.json, mode 0600).")]
ValidUntil = Annotated[str, typer.Option(help="Last day the key is valid (YYYY-MM-DD): the end of the term.")]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"--valid-until: expected a date as YYYY-MM-DD, got {value!r}", err=True)
        raise typer.Exit(2) from None


def _fail(exc: VendingError) -> None:
    typer.echo(str(exc), err=True)
    raise typer.Exit(2)


@keys_app.command("init")
def keys_init(
    state_dir: StateDir,
    valid_until: ValidUntil,
    term: Annotated[str, typer.Option(help="School term, e.g. 2026-1.")] = "2026-1",
    force: Annotated[bool, typer.Option(help="Replace an existing key (its pseudonyms become unlinkable).")] = False,
) -> None:
    """Create the term key that turns card uids into pseudonyms (HMAC-SHA256, 128 bits, base32)."""
    try:
        path = write_key(state_dir, term, _day(valid_until), force=force)
    except VendingError as exc:
        _fail(exc)
    typer.echo(f"created {path} for term {term}, valid until {valid_until}")


@keys_app.command("rotate")
def keys_rotate(
    state_dir: StateDir,
    term: Annotated[str, typer.Option(help="The new term, e.g. 2026-2.")],
    valid_until: ValidUntil,
) -> None:
    """Start a new term: a fresh key, so the vendor cannot link this term's pseudonyms to the last one's.

    A running machine picks the new key up between two events; no restart is needed.
    """
    old = read_key(state_dir).term if key_path(state_dir).exists() else None
    if old == term:
        typer.echo(f"term {term} is already current", err=True)
        raise typer.Exit(2)
    try:
        write_key(state_dir, term, _day(valid_until), force=True)
    except VendingError as exc:
        _fail(exc)
    typer.echo(f"rotated term key {old} -> {term}, valid until {valid_until}")


@keys_app.command("issuer")
def keys_issuer(
    out: Annotated[Path, typer.Option(help="Directory for issuer.key (0600) and issuer.pub.")],
    force: Annotated[
        bool, typer.Option(help="Replace an existing key pair (old settlements stay sealed to it).")
    ] = False,
) -> None:
    """Make the card issuer's X25519 key pair; machines seal settlements to issuer.pub."""
    private, public = generate_keypair()
    try:
        write_secret(out / "issuer.key", private.hex().encode() + b"\n", force=force)
    except VendingError as exc:
        _fail(exc)
    (out / "issuer.pub").write_text(public.hex() + "\n")
    typer.echo(f"wrote {out / 'issuer.key'} and {out / 'issuer.pub'}")
