"""``vending keys ...``: the term key and the issuer's key pair, created 0600 and never overwritten by accident."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from firmware.errors import VendingError
from firmware.files import KEY_FILE_BYTES, read_capped
from firmware.identity.keys import key_path, read_key, retire_key, school_term, write_key
from firmware.identity.keyset import MACHINE_KEY_FILE, machine_party, write_dev_set, write_party
from firmware.identity.secretfile import write_public
from firmware.identity.signing import Identity
from simulator.cli.exits import check_card_uids, day_option, fail, machine_ids, new_machine_id
from simulator.cli.secrets_guard import refuse_if_tracked

keys_app = typer.Typer(
    no_args_is_help=True, help="Term keys (pseudonyms) and every party's signing keys (docs/security.md)."
)

StateDir = Annotated[Path, typer.Option(help="The machine's state dir (holds term_key.json, mode 0600).")]
ValidUntil = Annotated[str, typer.Option(help="Last day the key is valid (YYYY-MM-DD): the end of the term.")]


def _term_end(valid_until: str) -> date:
    """The last day of a new term's key: today or later (a machine refuses to sell on an expired key)."""
    until = day_option(valid_until, "--valid-until")
    if until < date.today():
        fail(f"--valid-until {valid_until}: that day has passed; a term key must be valid today (the end of the term)")
    return until


@keys_app.command("init")
def keys_init(
    state_dir: StateDir,
    valid_until: Annotated[
        str | None,
        typer.Option(help="Last day the key is valid (YYYY-MM-DD); default: the last day of this school term."),
    ] = None,
    term: Annotated[
        str | None, typer.Option(help="School term, e.g. 2026-1 (Feb-Jul) or 2026-2 (Aug-Jan); default: this one.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing key (its pseudonyms become unlinkable).")] = False,
) -> None:
    """Create the term key that turns card uids into pseudonyms (HMAC-SHA256, 128 bits, base32).

    Without --term and --valid-until, the key is this school term's, valid to its last day (31 January or
    31 July): a fixed default term named a term that had passed, and a date written in a guide expired.
    """
    this_term, term_ends = school_term(date.today())
    until = _term_end(valid_until) if valid_until is not None else term_ends
    term = term or this_term
    try:
        refuse_if_tracked(state_dir)
        path = write_key(state_dir, term, until, force=force)
    except VendingError as exc:
        fail(exc)
    typer.echo(f"created {path} for term {term}, valid until {until.isoformat()}")


@keys_app.command("rotate")
def keys_rotate(
    state_dir: StateDir,
    term: Annotated[str, typer.Option(help="The new term, e.g. 2026-2.")],
    valid_until: ValidUntil,
) -> None:
    """Start a new term: a fresh key, so the vendor cannot link this term's pseudonyms to the last one's.

    A running machine picks the new key up between two events; no restart is needed.
    """
    until = _term_end(valid_until)
    current = read_key(state_dir) if key_path(state_dir).exists() else None
    old = current.term if current else None
    if old == term:
        fail(f"term {term} is already current")
    earlier = (*current.earlier, current.term) if current else ()
    if term in earlier:
        fail(f"term {term} was this machine's before, under another key: a term name names one key "
             "(the school finds a term's records by it); choose a new name; the current key is kept")  # fmt: skip
    try:
        refuse_if_tracked(state_dir)
        write_key(state_dir, term, until, force=True, earlier=earlier)
    except VendingError as exc:
        fail(exc)
    typer.echo(f"rotated term key {old} -> {term}, valid until {valid_until}")


@keys_app.command("retire")
def keys_retire(
    state_dir: StateDir,
    term: Annotated[str, typer.Option(help="The term that ended; must be the key file's term.")],
) -> None:
    """End a term: destroy its key, so nobody can tie that term's pseudonyms to cards again.

    The key file is overwritten and removed. A machine on this state dir needs a new term
    (`vending keys init` or `rotate`) before it sells again.
    """
    try:
        path = retire_key(state_dir, term)
    except VendingError as exc:
        fail(exc)
    typer.echo(f"retired term {term}: {path} overwritten and removed")


@keys_app.command("party")
def keys_party(
    party: Annotated[str, typer.Argument(help="vendor | school | issuer")],
    out: Annotated[Path, typer.Option(help="Directory for <party>.key (0600) and <party>.pub.")],
    force: Annotated[
        bool, typer.Option(help="Replace an existing key (what it signed stays verifiable only with the old .pub).")
    ] = False,
) -> None:
    """An authority's Ed25519 signing key; the issuer also gets its X25519 sealing pair (issuer-seal.key/.pub)."""
    try:
        refuse_if_tracked(out)
        written = write_party(out, party, force=force)
    except VendingError as exc:
        fail(exc)
    typer.echo("wrote " + ", ".join(str(p) for p in written) + " (and the .pub beside each)")


@keys_app.command("machine")
def keys_machine(
    machine: Annotated[str, typer.Option(help="The machine id (as in its config).")],
    state_dir: StateDir,
    enrol: Annotated[Path, typer.Option(help="The backends' enrolment directory: gets <machine>.pub.")],
    force: Annotated[bool, typer.Option(help="Replace an existing machine key (re-enrol it at the backends).")] = False,
) -> None:
    """The machine's own signing key, in its state dir as machine.key (0600); its .pub enrolled for the backends."""
    new_machine_id(machine, "--machine")  # it names the enrolment file: "../x" wrote outside --enrol
    if not enrol.is_dir():  # a typo made a directory no backend reads: the machine's reports refused as unknown
        fail(f"--enrol {enrol}: no such directory; it is the backends' enrolment directory (their --machines DIR)")
    enrolled = enrol / f"{machine}.pub"
    if enrolled.is_symlink():  # checked before the key is made: nothing is written through one
        fail(f"--enrol: {enrolled} is a symlink; nothing is written through one")
    if not force and enrolled.exists():  # the machine enrolled under that id would be locked out
        fail(f"--enrol: {enrolled} enrols machine {machine} already; --force re-enrols it with a new key")
    identity = Identity.generate(machine_party(machine))
    try:
        refuse_if_tracked(state_dir)
        path = identity.save(state_dir / MACHINE_KEY_FILE, force=force)
        write_public(enrolled, identity.public.pem())  # as the .pub beside the key: never through a link
    except VendingError as exc:
        fail(exc)
    typer.echo(f"wrote {path} and enrolled {enrolled}")


@keys_app.command("dev-set")
def keys_dev_set(
    out: Annotated[Path, typer.Option("--dir", help="Directory for the whole set (created 0700).")],
    machines: Annotated[str, typer.Option(help="Comma-separated machine ids, e.g. demo-1,demo-2.")] = "",
    force: Annotated[bool, typer.Option(help="Replace existing keys.")] = False,
) -> None:
    """Every party's keys for one laptop: vendor, school, issuer (+ sealing pair) and each machine.

    Use the directory as `vending serve --trust DIR --identity DIR/machines/ID.key` and as the
    backends' `--machines DIR/machines`; docs/security.md says who should hold which file in a deployment.
    """
    ids = machine_ids(machines)
    try:
        refuse_if_tracked(out)
        written = write_dev_set(out, ids, force=force)
    except VendingError as exc:
        fail(exc)
    typer.echo(f"wrote {len(written)} private keys (0600) with their .pub files in {out}")


@keys_app.command("technician")
def keys_technician(
    key: Annotated[Path, typer.Option(help="The vendor's technician key file (hex); made 0600 if it is missing.")],
    card: Annotated[list[str], typer.Option("--card", help="A technician card's uid (hex); repeatable.")],
) -> None:
    """Name technician cards for a machine config's `technicians: {key, cards}`: the names, never the uids."""
    import secrets

    from firmware.identity.pseudonym import technician_name
    from firmware.identity.secretfile import write_secret

    check_card_uids(card)
    try:
        if not key.exists():
            refuse_if_tracked(key)
            write_secret(key, secrets.token_bytes(32).hex().encode())
        secret = bytes.fromhex(read_capped(key, KEY_FILE_BYTES).decode().strip())
    except OSError as exc:
        fail(f"--key {key}: {exc.strerror or exc}")
    except (ValueError, VendingError) as exc:
        fail(f"--key {key}: {exc}")
    names = dict.fromkeys(technician_name(secret, uid) for uid in card)  # a card given twice (any case) once
    typer.echo(f"technicians: {{key: {key}, cards: [{', '.join(names)}]}}")
