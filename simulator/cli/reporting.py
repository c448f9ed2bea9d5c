"""``vending backend ...``: the vendor and issuer backend stubs that consume the machine's reports."""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from firmware.errors import VendingError
from firmware.identity.keyset import Enrolment
from firmware.identity.signing import Identity, PublicKey
from firmware.reporting.mqtt import reachable
from simulator.cli.connection import Amqp, CaFile, CertFile, CertKey, Password, Username, amqp_address, broker_address
from simulator.cli.exits import EXIT_INTERRUPTED, day_option, fail
from simulator.safe_output import write_csv

if TYPE_CHECKING:
    from simulator.backends.service import BackendService
    from simulator.backends.vendor import VendorBackend
    from simulator.dashboard.server import DashboardServer

backend_app = typer.Typer(no_args_is_help=True, help="Backend stubs that consume the machine's reports.")

Broker = Annotated[str, typer.Option(help="mqtt://host:port or mqtts://host:port")]
Machines = Annotated[
    Path, typer.Option(help="Enrolment directory: <machine-id>.pub for every machine this backend accepts.")
]


SchoolKey = Annotated[
    Path | None,
    typer.Option(help="The school's public key (school.pub): answer its signed access and erasure requests."),
]
PURGE_EVERY_S = 3600.0
RetentionDays = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Forget reports (and settlement lines) older than this many days before each machine's newest; hourly.",
    ),
]
RetentionNow = Annotated[
    str | None,
    typer.Option("--now", help="Count the retention period back from this day (YYYY-MM-DD) instead."),
]


def retention_from(now: str | None, retention_days: int | None) -> date | None:
    """``--now`` as the day retention counts back from, checked before anything starts; None: the data's own clock.

    A day not yet come forgot reports that were not old (``--now 2099-01-01`` with 30 days: every one of
    them), and ``--now`` without ``--retention-days`` was ignored without a word.
    """
    if now is None:
        return None
    if retention_days is None:
        fail("--now: the day the retention period counts back from; give --retention-days too")
    today = day_option(now, "--now")
    if today > date.today():
        fail(f"--now {now}: after today ({date.today()}); reports younger than {retention_days} days would be "
             "forgotten; nothing forgotten")  # fmt: skip
    return today


def serve_forever(service: object, retention_days: int | None = None, today: date | None = None) -> None:
    """Run until SIGINT/SIGTERM; with a retention period, purge at start and then every hour.

    The period counts back from each machine's newest record (the data's own clock), or from ``today``.
    """
    stop = threading.Event()
    received: list[int] = []

    def on_signal(number: int, _frame: object) -> None:
        received.append(number)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    gc.freeze()  # what start-up made lives as long as the process: no collection walks it again
    while True:
        if retention_days is not None:
            forgotten, cutoffs = service.store.expire(retention_days, today)  # type: ignore[attr-defined]
            since = f"before {today}" if today else "before each machine's newest record"
            typer.echo(f"retention: forgot {forgotten} report(s) over {retention_days} days {since}")
            if cutoffs:
                typer.echo("retention: kept from " + ", ".join(f"{m} {day}" for m, day in sorted(cutoffs.items())))
        if stop.wait(PURGE_EVERY_S):
            break
    service.stop()  # type: ignore[attr-defined]
    if received and received[0] == signal.SIGINT:  # Ctrl-C, as the exit-code table says; SIGTERM is a clean stop
        raise typer.Exit(EXIT_INTERRUPTED)


PARTIES = ("vendor", "school", "issuer")


def party_identity(party: str, path: Path) -> Identity:
    """``party``'s signing key from ``path``, refused when the public keys beside it say it is not theirs.

    A dev-set directory holds every party's key: the issuer's key given to the vendor's backend signed
    every ack with a key no machine trusts, so reports were stored and resent for ever, acks refused.
    """
    try:
        identity = Identity.load(party, path)
    except VendingError as exc:
        fail(exc)
    beside = {owner: _public_beside(path, owner) for owner in PARTIES}
    owner = next((name for name, kid in beside.items() if kid == identity.kid), None)
    if owner is not None and owner != party:
        fail(f"{path}: the {owner}'s key ({owner}.pub beside it is its public half), not the {party}'s")
    if owner is None and beside[party] is not None:
        fail(f"{path}: not the {party}'s key: {party}.pub beside it is another key")
    return identity


def _public_beside(path: Path, owner: str) -> str | None:
    """The key id of ``owner``'s public key in the directory of ``path``, if one is there and readable."""
    try:
        return PublicKey.load(owner, path.parent / f"{owner}.pub").kid
    except (VendingError, OSError):
        return None


def enrolled_machines(machines: Path) -> Enrolment:
    """The backend's enrolment directory (``<id>.pub`` files); it may be empty, but it must be there."""
    if not machines.is_dir():
        fail(f"--machines {machines}: no such directory (the enrolled machines' .pub files: `vending keys dev-set` "
             "makes keys/machines, `vending keys machine --enrol DIR` adds to one)")  # fmt: skip
    return Enrolment(machines)


def shared_key(keys: Path, name: str, party: str) -> bytes:
    """A key an authority shares with its machines (``hotlist``, ``controls``), or exit 2 naming what is missing."""
    from firmware.identity.keyset import read_shared_key

    try:
        key = read_shared_key(keys, name)
    except VendingError as exc:
        fail(exc)
    if key is None:
        fail(f"--keys {keys}: no {name}.key (`vending keys dev-set` writes one with the {party}'s keys)")
    return key


def school_public_key(path: Path | None) -> PublicKey | None:
    """Without a school key the backend takes no requests from anyone (and says so in its banner)."""
    if path is None:
        return None
    try:
        return PublicKey.load("school", path)
    except VendingError as exc:
        fail(exc)


def requests_note(school: PublicKey | None) -> str:
    return "; answering the school's requests" if school is not None else "; no --school-key: no requests answered"


vendor_app = typer.Typer(help="The vendor backend: run it (no subcommand), or report from its database.")
backend_app.add_typer(vendor_app, name="vendor")


@vendor_app.callback(invoke_without_command=True)
def backend_vendor(
    context: typer.Context,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port or mqtts://host:port")] = None,
    db: Annotated[
        str | None,
        typer.Option(help="SQLite file, or postgresql://user@host/db (psycopg 3) shared by several instances."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="The vendor's signing key (vendor.key): acks are signed with it.")
    ] = None,
    machines: Annotated[
        Path | None, typer.Option(help="Enrolment directory: <machine-id>.pub for every machine this backend accepts.")
    ] = None,
    shared: Annotated[
        str | None, typer.Option(help="Share the load with other backend processes in this $share group.")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (give each shared instance its own).")] = None,
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
    retention_days: RetentionDays = 180,
    now: RetentionNow = None,
    school_key: SchoolKey = None,
    amqp: Amqp = None,
    http: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            help="Also serve the live operator dashboard here (127.0.0.1:8080); its link with a token is printed.",
        ),
    ] = None,
) -> None:
    """Store sales, denials, stock and alerts once each, signed by an enrolled machine, and ack them signed.

    Needs --broker, --db, --key and --machines. `vending backend vendor report` reads the database instead.
    With --http, the dashboard shows machines, stock, alerts and the day's sales live, and its buttons
    send restock and price commands signed with --key.
    """
    if context.invoked_subcommand is not None:
        return
    given = (("--broker", broker), ("--db", db), ("--key", key), ("--machines", machines))
    missing = [name for name, value in given if value is None]
    if missing:
        fail(f"vending backend vendor needs {', '.join(missing)} (or a subcommand: report)")
    assert broker is not None and db is not None and key is not None and machines is not None
    from simulator.backends.vendor import VendorBackend

    listen = _listen(http)
    today = retention_from(now, retention_days)
    address = broker_address(broker, username, password, ca, cert, cert_key)
    queue = amqp_address(amqp, ca, cert, cert_key)
    identity = party_identity("vendor", key)
    school = school_public_key(school_key)
    service = VendorBackend(address, db, identity, enrolled_machines(machines), client_id, shared, school)
    if queue is not None:
        service.use_amqp(queue)
    service.start()
    await_subscription(service)
    source = f"{amqp} (queue vendor.reports)" if amqp else str(address)
    typer.echo(f"vendor backend on {source}, storing in {db}{requests_note(school)}; Ctrl-C to stop")
    dashboard = _start_dashboard(service, listen) if listen is not None else None
    try:
        serve_forever(service, retention_days, today)
    finally:
        if dashboard is not None:
            dashboard.stop()


def _listen(http: str | None) -> tuple[str, int] | None:
    if http is None:
        return None
    from simulator.dashboard.server import parse_listen

    try:
        host, port = parse_listen(http)
    except VendingError as exc:
        fail(exc)
    if not _loopback(host):
        typer.echo(
            f"warning: --http {http} serves the dashboard beyond this computer; anyone who can reach it and has "
            "the link's token can send signed commands. Prefer 127.0.0.1 behind an SSH tunnel or a TLS proxy",
            err=True,
        )
    return host, port


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _start_dashboard(service: VendorBackend, listen: tuple[str, int]) -> DashboardServer:
    from simulator.dashboard.server import DashboardServer
    from simulator.dashboard.wiring import dashboard_for, new_token

    token = new_token()
    try:
        server = DashboardServer(dashboard_for(service, token), *listen).start()
    except VendingError as exc:
        service.stop()
        fail(exc)
    typer.echo(f"dashboard: {server.url}/?token={token}")
    return server


@vendor_app.command("report")
def vendor_report(
    db: Annotated[str, typer.Option(help="The vendor backend's database (SQLite file or postgresql://...).")],
    by: Annotated[str, typer.Option(help="Cells: product,day or product,day,hour (also machine).")] = "product,day",
    k: Annotated[int, typer.Option(min=1, help="Suppress every cell built from fewer than k distinct buyers.")] = 5,
    machine: Annotated[str | None, typer.Option(help="Only this machine (one the database has reports of).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON: one object per cell; a suppressed cell has null figures.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV to stdout, a header row always.")] = False,
) -> None:
    """Sales aggregates the vendor may share: a cell from fewer than k distinct buyers shows as suppressed.

    The vendor's pseudonyms name visits, so a cell's buyers are bounded from below by the machines' day
    summaries (the most items one card bought), never counted from pseudonyms; cells of a day not yet
    closed are suppressed until its summary arrives.
    """
    from simulator.backends.analytics import DIMENSIONS, aggregate
    from simulator.backends.vendor import open_store

    if as_json and as_csv:
        fail("--json and --csv: choose one")
    dimensions = [part.strip() for part in by.split(",") if part.strip()]
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown or not dimensions:
        fail(f"--by: expected some of {', '.join(DIMENSIONS)}, got {by!r}")
    if twice := next((d for d in dimensions if dimensions.count(d) > 1), None):
        fail(f"--by {by}: {twice} is given twice; a cell is named by each dimension once")
    if not str(db).startswith(("postgresql://", "postgres://")) and not Path(db).exists():
        fail(f"--db: {db} does not exist")
    store = open_store(db)
    if machine is not None and not store.heard_of(machine):  # a mistyped id printed an empty table, exit 0
        fail(f"--machine {machine!r}: {db} holds no report from that machine")
    cells = aggregate(store, dimensions, k, machine)
    header = [*dimensions, "buyers_at_least", "items", "revenue"]
    if as_json:
        figures = ("buyers_at_least", "items", "revenue")
        objects = []
        for cell in cells:
            shown = dict(zip(header, cell, strict=True))
            suppressed = not isinstance(shown["buyers_at_least"], int)
            objects.append({**shown, **dict.fromkeys(figures if suppressed else ()), "suppressed": suppressed})
        typer.echo(json.dumps(objects, ensure_ascii=False, indent=1))
    elif as_csv:
        write_csv(sys.stdout, header, cells)
    else:
        table = Table(title=f"Sales by {', '.join(dimensions)} (cells not shown to hold {k} buyers suppressed)")
        for column in header:
            table.add_column(column, justify="left" if column in dimensions else "right")
        for cell in cells:
            table.add_row(*(str(value) for value in cell))
        Console(width=140).print(table)


def await_subscription(service: BackendService, timeout_s: float = 15.0) -> None:
    """The start-up line is printed once the broker confirmed the subscriptions (scripts wait for it).

    A broker nobody answers at is said at once, naming the address and why; the backend keeps trying
    (a broker restarting is not a reason for a service to give up), and its dashboard still serves.
    """
    try:
        reachable(service.address)
    except VendingError as exc:
        typer.echo(f"warning: {exc}; retrying until it answers", err=True)
        return
    if not service.subscribed.wait(timeout_s):
        typer.echo(f"warning: no subscription confirmed by the broker within {timeout_s:.0f} s; still trying", err=True)
