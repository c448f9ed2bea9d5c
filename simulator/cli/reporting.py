"""``vending keys ...`` and ``vending backend ...``: the school's term key, the issuer's key pair, the backends."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from firmware.identity.keys import key_path, load_key, write_key
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import generate_keypair, read_key
from firmware.reporting.sealed import write_key as write_raw_key

keys_app = typer.Typer(no_args_is_help=True, help="The school's term key (pseudonyms) and the issuer's key pair.")
backend_app = typer.Typer(no_args_is_help=True, help="Backend stubs that consume the machine's reports.")

StateDir = Annotated[Path, typer.Option(help="The machine's state dir (holds term_key.json, mode 0600).")]


@keys_app.command("init")
def keys_init(
    state_dir: StateDir,
    term: Annotated[str, typer.Option(help="School term, e.g. 2026-1.")] = "2026-1",
    force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False,
) -> None:
    """Create the term key that turns card uids into pseudonyms (HMAC-SHA256, 128 bits, base32)."""
    if key_path(state_dir).exists() and not force:
        typer.echo(f"{key_path(state_dir)}: a term key exists already (use `keys rotate` or --force)", err=True)
        raise typer.Exit(2)
    typer.echo(f"created {write_key(state_dir, term)} for term {term}")


@keys_app.command("rotate")
def keys_rotate(state_dir: StateDir, term: Annotated[str, typer.Option(help="The new term, e.g. 2026-2.")]) -> None:
    """Start a new term: a fresh key, so the vendor cannot link this term's pseudonyms to the last one's."""
    old = load_key(state_dir).term if key_path(state_dir).exists() else None
    if old == term:
        typer.echo(f"term {term} is already current", err=True)
        raise typer.Exit(2)
    write_key(state_dir, term)
    typer.echo(f"rotated term key {old} -> {term}")


@keys_app.command("issuer")
def keys_issuer(out: Annotated[Path, typer.Option(help="Directory for issuer.key (0600) and issuer.pub.")]) -> None:
    """Make the card issuer's X25519 key pair; machines seal settlements to issuer.pub."""
    private, public = generate_keypair()
    write_raw_key(out / "issuer.key", private)
    (out / "issuer.pub").write_text(public.hex() + "\n")
    typer.echo(f"wrote {out / 'issuer.key'} and {out / 'issuer.pub'}")


Broker = Annotated[str, typer.Option(help="mqtt://host:port or mqtts://host:port")]


def _serve_forever(service: object) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    service.stop()  # type: ignore[attr-defined]


@backend_app.command("vendor")
def backend_vendor(
    broker: Broker,
    db: Annotated[
        str, typer.Option(help="SQLite file, or postgresql://user@host/db (psycopg 3) shared by several instances.")
    ],
    username: str | None = None,
    password: str | None = None,
    shared: Annotated[
        str | None, typer.Option(help="Share the load with other backend processes in this $share group.")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (give each shared instance its own).")] = None,
) -> None:
    """Store sales, denials, stock and alerts once each, and acknowledge them to the machines."""
    from simulator.backends.vendor import VendorBackend

    service = VendorBackend(BrokerAddress.parse(broker, username, password), db, client_id, shared).start()
    typer.echo(f"vendor backend on {broker}, storing in {db}; Ctrl-C to stop")
    _serve_forever(service)


@backend_app.command("issuer")
def backend_issuer(
    broker: Broker,
    key: Annotated[Path, typer.Option(help="The issuer's private key (issuer.key).")],
    db: Annotated[Path, typer.Option(help="SQLite file for settlements.")] = Path("issuer.db"),
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Open sealed settlements (per-card daily totals) and acknowledge them."""
    from simulator.backends.issuer import IssuerBackend

    service = IssuerBackend(BrokerAddress.parse(broker, username, password), db, read_key(key)).start()
    typer.echo(f"issuer backend on {broker}, storing in {db}; Ctrl-C to stop")
    _serve_forever(service)
