"""``vending broker setup``: a TLS + ACL Mosquitto configuration for a deployment (docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from firmware.errors import VendingError
from simulator.cli.exits import fail, machine_ids
from simulator.cli.secrets_guard import refuse_if_tracked

broker_app = typer.Typer(no_args_is_help=True, help="Broker configuration for deployments.")


@broker_app.command("setup")
def setup(
    out: Annotated[Path, typer.Option("--dir", help="Directory for the CA, certificates, mosquitto.conf and acl.")],
    machines: Annotated[
        str, typer.Option(help="Comma-separated machine ids, e.g. TPE-DAAN-JH-01,TPE-DAAN-JH-02; more: `broker enrol`.")
    ] = "",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The TLS listener's port.")] = 8883,
    force: Annotated[
        bool,
        typer.Option(
            help="Replace every key and certificate, the CA's too (every machine enrolled again). Without it, a "
            "directory written before keeps them and gains only the certificates it lacks."
        ),
    ] = False,
) -> None:
    """A CA, a certificate per party (CN = MQTT user), mosquitto.conf, ACLs, the retain guard (cc, mosquitto-dev).

    Run the broker with `mosquitto -c DIR/mosquitto.conf`; each party connects with
    `--broker mqtts://127.0.0.1:PORT --ca DIR/ca.crt --cert DIR/clients/NAME.crt --cert-key DIR/clients/NAME.key`
    where NAME is a party's backend (vendor, issuer, school), its people's tools (vendor-ops, issuer-ops,
    school-ops) or a machine's id. Machines' ACL rules are patterns over the
    certificate's name, so `vending broker enrol` adds a machine without touching the running broker.
    """
    from simulator.servers.broker_setup import write_broker_setup

    ids = machine_ids(machines)
    try:
        refuse_if_tracked(out)
        written = write_broker_setup(out, ids, port, force=force)
    except VendingError as exc:
        fail(exc)
    typer.echo(
        f"wrote {written.config} (TLS on 127.0.0.1:{port}, client certificates required, ACLs in {out / 'acl'}, "
        f"retained messages only on status and stock: {out / 'retain_guard.so'})"
    )
    typer.echo(
        f"certificates for each party's backend (vendor, issuer, school), a second backend (vendor-2, issuer-2), "
        f"its people's tools (vendor-ops, issuer-ops, school-ops: cmd send, the hotlist, controls, requests) "
        f"and {len(ids)} machine(s) in {out / 'clients'}; the broker takes each client id from its certificate"
    )


@broker_app.command("enrol")
def enrol(
    out: Annotated[Path, typer.Option("--dir", help="A directory written by `vending broker setup`.")],
    machine: Annotated[str, typer.Option(help="The machine's id; its certificate's common name.")],
    force: Annotated[bool, typer.Option(help="Replace the machine's existing key and certificate.")] = False,
) -> None:
    """A client certificate for one more machine, signed by the setup's CA; the broker needs no reload."""
    from simulator.servers.broker_setup import BrokerSetup

    if not (out / "ca.key").exists():
        fail(f"--dir: {out} has no ca.key; create it with `vending broker setup --dir {out}`")
    try:
        BrokerSetup(out, 0).enrol(machine, force=force)
    except VendingError as exc:
        fail(exc)
    typer.echo(f"wrote {out / 'clients' / machine}.crt and .key (CN {machine})")


@broker_app.command("cluster")
def cluster(
    out: Annotated[Path, typer.Option("--dir", help="Directory for the CA, certificates and every node's data.")],
    nodes: Annotated[
        int, typer.Option(min=3, max=7, help="RabbitMQ nodes (3 or more: quorum queues need a majority).")
    ] = 3,
    machines: Annotated[str, typer.Option(help="Comma-separated machine ids to enrol (users and certificates).")] = "",
    print_only: Annotated[
        bool, typer.Option("--print", help="Write everything and print the commands that start it; start nothing.")
    ] = False,
) -> None:
    """A RabbitMQ cluster (Debian's rabbitmq-server) on loopback: MQTT and AMQP over TLS, certificate login only.

    Every node has its own data dir and ports; users, topic rights (the same as the Mosquitto ACL),
    one quorum queue per party and the limits are imported as one definitions file. Machines connect
    with `--broker` listing every node's mqtts:// URL; backends with `--amqp` listing every node's
    amqps:// URL (competing consumers). The nodes keep running after this command returns.
    """
    from simulator.servers.broker_setup import write_broker_setup
    from simulator.servers.rabbitmq import RabbitCluster, rabbitmq_installed

    ids = machine_ids(machines)
    if not print_only and not rabbitmq_installed():
        fail("rabbitmq-server is not installed: apt-get install rabbitmq-server (or use --print on another host)")
    try:
        refuse_if_tracked(out)
        setup = write_broker_setup(out / "broker", ids, 0)
        built = RabbitCluster(out / "cluster", setup, nodes)
        built.write(ids)
    except (VendingError, FileNotFoundError) as exc:
        fail(exc)
    if print_only:
        typer.echo("\n".join(built.commands()))
        return
    try:
        built.start()
    except (RuntimeError, TimeoutError) as exc:
        fail(exc)
    access = built.access()
    clients = setup.directory / "clients"
    typer.echo(f"cluster of {nodes} nodes is up ({', '.join(node.name for node in built.nodes)})")
    typer.echo(f"machines: --broker {access.party('vendor')} --ca {setup.directory / 'ca.crt'} "
               f"--cert {clients}/ID.crt --cert-key {clients}/ID.key")  # fmt: skip
    typer.echo(f"backends: --amqp {access.amqp('vendor')} (with --broker as above and the party's certificate)")
    typer.echo(f"stop: {built.stop_command()}")
