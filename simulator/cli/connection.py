"""The broker options every command that connects takes, and the address they make.

The password comes from ``--password`` or, better, the ``VENDING_BROKER_PASSWORD`` environment
variable (never shown in ``--help``, never echoed, not visible in ``ps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from firmware.errors import VendingError
from firmware.reporting.mqtt import PASSWORD_ENV, BrokerAddress
from simulator.cli.exits import fail

if TYPE_CHECKING:
    from simulator.scenarios.reporting_world import ReportingWorld

Username = Annotated[str | None, typer.Option(help="MQTT user name.")]
Password = Annotated[
    str | None,
    typer.Option(help=f"MQTT password (prefer the {PASSWORD_ENV} variable).", envvar=PASSWORD_ENV, show_envvar=True),
]
CaFile = Annotated[Path | None, typer.Option("--ca", help="CA certificate to check an mqtts:// broker against.")]
CertFile = Annotated[Path | None, typer.Option("--cert", help="Client certificate (mqtts://, generated broker).")]
CertKey = Annotated[Path | None, typer.Option("--cert-key", help="The client certificate's private key.")]
Amqp = Annotated[
    str | None,
    typer.Option(
        help="amqps://host:port[,amqps://...]: consume the party's quorum queue on a RabbitMQ cluster "
        "(`vending broker cluster`) as one of N competing instances, logged in by --cert; --broker then "
        "names the cluster's MQTT nodes (for retained pushes)."
    ),
]


def amqp_address(amqp: str | None, ca: Path | None, cert: Path | None, cert_key: Path | None) -> Any:
    """``--amqp`` checked before anything starts (exit 2 naming what is wrong); None without it."""
    if amqp is None:
        return None
    from simulator.backends.amqp import AmqpAddress

    try:
        return AmqpAddress.parse(amqp, *(str(p) if p else None for p in (ca, cert, cert_key)))
    except VendingError as exc:
        fail(exc)


def broker_address(
    url: str,
    username: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
    cert_key: Path | None = None,
) -> BrokerAddress:
    """The address, or exit 2 with the reason."""
    try:
        return BrokerAddress.parse(
            url,
            username,
            password,
            str(ca) if ca else None,
            str(cert) if cert else None,
            str(cert_key) if cert_key else None,
        )
    except VendingError as exc:
        fail(exc)


OWN_BROKERS = ("embedded", "mosquitto", "none")


def run_broker(
    broker: str,
    username: str | None,
    password: str | None,
    ca: Path | None,
    cert: Path | None,
    cert_key: Path | None,
    own: tuple[str, ...] = OWN_BROKERS,
) -> BrokerAddress | None:
    """For commands that can start their own broker: None for those, the address for a URL, or exit 2.

    ``own``: the brokers this command can start (``fleet`` also a RabbitMQ cluster).

    The connection options are refused with a broker the run starts itself rather than silently
    ignored (the password alone is not checked: it may come from the environment for other commands).
    """
    if broker in own:
        given = [name for name, value in (("--username", username), ("--ca", ca), ("--cert", cert)) if value]
        given += ["--cert-key"] if cert_key else []
        if given:
            fail(f"--broker {broker}: {', '.join(given)} apply to an mqtt:// or mqtts:// broker only")
        return None
    return broker_address(broker, username, password, ca, cert, cert_key)


def start_world(world: ReportingWorld, broker: str) -> ReportingWorld:
    """The run's broker and backends, started, or exit 2 naming the broker and why.

    A broker that cannot be reached or started is the environment's fault, not the program's.
    """
    try:
        return world.start()
    except (OSError, RuntimeError) as exc:
        raise VendingError(f"cannot start reporting on broker {broker!r}: {exc}") from None
