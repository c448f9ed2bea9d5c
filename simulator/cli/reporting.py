"""``vending backend ...``: the vendor and issuer backend stubs that consume the machine's reports."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import read_key

backend_app = typer.Typer(no_args_is_help=True, help="Backend stubs that consume the machine's reports.")

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
