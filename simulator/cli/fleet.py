"""``vending fleet``: a district of machines, one broker, the backends, a table at the end."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from firmware.config.machine import PAYMENT_MODES
from firmware.domain import FIRST_YEAR, LAST_YEAR
from simulator.cli.connection import (
    OWN_BROKERS,
    CaFile,
    CertFile,
    CertKey,
    Password,
    Username,
    run_broker,
    start_world,
)
from simulator.cli.exits import EXIT_FAILED, EXIT_OK, day_option, fail
from simulator.fleet.cluster_day import ClusterDay
from simulator.fleet.model import school_days
from simulator.fleet.runner import DRAIN_S, FleetResult, open_accounts, run_fleet
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.rabbitmq import CLUSTER


def fleet(
    machines: Annotated[int, typer.Option(min=1, max=100_000, help="How many school machines.")] = 10,
    day: Annotated[str, typer.Option(help="The school day to simulate (YYYY-MM-DD, Monday to Friday).")] = "2026-03-02",
    students: Annotated[int, typer.Option(min=1, max=10_000, help="Students per school.")] = 600,
    broker: Annotated[
        str,
        typer.Option(
            help="auto (Mosquitto when installed, else embedded), embedded, mosquitto, rabbitmq-cluster (three "
            "RabbitMQ nodes, two vendor and two issuer backend instances), or mqtt://host:port"
        ),
    ] = "auto",
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
    seed: Annotated[int, typer.Option(help="Same seed, same machines, taps and results.")] = 1,
    processes: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: CPU count).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    db: Annotated[
        str | None, typer.Option(help="The vendor backend's store: postgresql://... (default: SQLite).")
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, max=200, help="Consecutive school days (Mon-Fri): same students, same term keys.")
    ] = 1,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Keep every party's data here (a new or empty directory): vendor.db, issuer.db, keys/, school/, "
            "machines/ID/."
        ),
    ] = None,
    payment: Annotated[
        str,
        typer.Option(
            help="machine_wallet (each machine keeps balances), card (every student a purse card that travels "
            "between the school's machines and is topped up on Mondays when low) or account (every card an "
            "account at the issuer's backend, asked at each tap: a minor's with a guardian linked)."
        ),
    ] = "machine_wallet",
    machines_per_school: Annotated[
        int, typer.Option(min=1, max=10, help="Machines at each school; its students use all of them.")
    ] = 1,
    kill_mid_day: Annotated[
        bool,
        typer.Option(
            help="rabbitmq-cluster: at half the fleet, SIGKILL a broker node and a vendor and an issuer "
            "instance; bring them back 10 s later."
        ),  # fmt: skip
    ] = False,
) -> None:
    """Run N machines' school days against one broker and the backends; report what was delivered.

    Generates N machines and a realistic school day each, runs them on virtual time against one
    broker with the vendor and issuer backends consuming, and reports what happened and what was
    delivered. With --days, a term: the same students every day, the same term keys, the backends'
    databases growing day by day; with --out, everything is kept for inspection afterwards.
    """
    import os

    the_day = day_option(day)
    if not FIRST_YEAR <= the_day.year <= LAST_YEAR - 1:  # a term of --days runs on from it
        fail(f"--day {day}: a simulated day is in the years {FIRST_YEAR}-{LAST_YEAR - 1}")
    if the_day.weekday() >= 5:  # it ran the Monday after and said so nowhere, not even in --json
        after = school_days(1, the_day)[0]
        fail(f"--day {day}: a {the_day:%A}; a school day is Monday to Friday (the next is {after})")
    if payment not in PAYMENT_MODES:
        fail(f"--payment {payment!r}: one of {', '.join(PAYMENT_MODES)}")
    broker = fleet_broker(broker)
    if kill_mid_day and broker != CLUSTER:
        fail(f"--kill-mid-day: only with --broker {CLUSTER} (a single broker has no node to lose)")
    if out is not None and (out.is_file() or (out.is_dir() and any(out.iterdir()))):
        # its machines would start on an earlier run's books (their clocks behind them: every sale refused)
        # and its backends count that run's reports with this one's
        fail(f"--out {out}: not an empty directory; the fleet writes a world of its own: name a new one")
    address = run_broker(broker, username, password, ca, cert, cert_key, own=(*OWN_BROKERS, CLUSTER))
    console = Console(stderr=True)
    result = FleetResult(broker=_broker_label(broker, address))
    with tempfile.TemporaryDirectory(prefix="fleet-world-") as tmp:
        workdir = out or Path(tmp)
        world = start_world(ReportingWorld(workdir, broker, vendor_db=db, broker_address=address), broker)
        console.print(world.describe_broker(), highlight=False)
        on_cluster = ClusterDay(world, machines, kill_mid_day) if broker == CLUSTER else None
        try:
            if on_cluster is not None:
                on_cluster.prepare()
            if out is not None:
                write_roster(out / "school" / "roster.csv", machines, the_day, students, seed, machines_per_school)
                _school_db(out / "school")
            # a machine keeps its state dir (its sequence numbers, balances, books) from day to day
            machines_dir = workdir / "machines" if out is not None or days > 1 else None
            if payment == "account" and world.issuer is not None:
                open_accounts(world.issuer.accounts, world.keys.issuer, machines, the_day, students, seed,
                              machines_per_school)  # fmt: skip
            with Progress(
                TextColumn("{task.fields[day]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[sales]} sales"),
                console=console,
                disable=as_json,
            ) as bar:
                for one_day in school_days(days, the_day):
                    task = bar.add_task("fleet", total=machines, sales=0, day=one_day.isoformat())
                    today = run_fleet(
                        machines,
                        one_day,
                        students,
                        seed,
                        world.broker_access(),
                        processes or os.cpu_count() or 1,
                        world.keys.directory,
                        progress=lambda r, task=task: _progress(bar, task, r, on_cluster),
                        term_start=the_day,
                        keep=machines_dir,
                        payment=payment,
                        per_school=machines_per_school,
                    )
                    result.absorb(today)
            if on_cluster is not None:
                on_cluster.finish()
            _collect_delivery(world, result)
            faults = on_cluster.summary() if on_cluster is not None else {}
        finally:
            if on_cluster is not None:
                on_cluster.stop()
            world.stop()
    _report(result, as_json, faults)
    lost = result.reports - result.delivered + result.settlements - result.settlements_delivered
    if lost:
        console.print(_where_lost(result, lost), highlight=False)
    raise typer.Exit(EXIT_OK if lost == 0 else EXIT_FAILED)


def _where_lost(result: FleetResult, lost: int) -> str:
    """Why the answer is no, and where to look: the machines whose outbox kept rows past their drain."""
    said = f"{lost} report(s) produced but not stored"
    if not result.stranded:
        return f"{said}; every outbox was acknowledged empty, so look at the backends' stores"
    kept = ", ".join(f"{machine} ({rows})" for machine, rows in sorted(result.stranded.items()))
    return f"{said}; left in the outbox when its {DRAIN_S:.0f}s drain gave up, rows: {kept}"


def _progress(bar: Progress, task: Any, result: FleetResult, on_cluster: ClusterDay | None) -> None:
    bar.update(task, completed=result.machines, sales=result.sales)
    if on_cluster is not None:
        on_cluster.progress(result.machines)


def fleet_broker(choice: str) -> str:
    """``auto``: Mosquitto when installed (a fleet's traffic is what it is built for), else the embedded one."""
    if choice != "auto":
        return choice
    from simulator.servers.mosquitto import mosquitto_binary

    return "mosquitto" if mosquitto_binary() is not None else "embedded"


def _broker_label(broker: str, address: object) -> str:
    if broker == "mosquitto":
        return "mosquitto (started for this run: TLS, ACL)"
    if broker == "embedded":
        return "embedded (amqtt; install mosquitto for big fleets)"
    if broker == CLUSTER:
        return "rabbitmq-cluster (3 nodes, TLS; 2 vendor + 2 issuer backends on quorum queues)"
    return str(address)


def write_roster(path: Path, machines: int, first_day: date, students: int, seed: int, per_school: int = 1) -> None:
    """What only the school knows: which card is whose (here: which school, by its first machine; which profile)."""
    import csv

    from firmware.config.catalog import load_catalog
    from simulator.fleet.model import plan_machine, stockable
    from simulator.fleet.runner import CATALOG

    products = stockable(load_catalog(CATALOG))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "school", "machine", "card_uid", "profile"])  # `vending backend school` reads it
        for index in range(0, machines, per_school):  # a school's first machine names its students
            plan = plan_machine(index, first_day, students, seed, products, per_school=per_school)
            for number, card in enumerate(plan.cards, start=1):
                student = f"{plan.machine_id}-{number:04d}"
                writer.writerow([student, plan.config["school"]["code"], plan.machine_id, card.uid, card.profile])
    path.chmod(0o600)


def _school_db(school: Path) -> None:
    """The school's database beside its roster, as `vending backend school` imports it."""
    from simulator.school.roster import load_roster
    from simulator.school.store import SchoolStore

    store = SchoolStore(school / "school.db")
    try:
        store.replace_roster(load_roster(school / "roster.csv"))
    finally:
        store.close()


def _collect_delivery(world: ReportingWorld, result: FleetResult, timeout: float = 120.0) -> None:
    """The outboxes are empty only once acked, so the stores hold everything; read them once settled."""
    assert world.vendor is not None and world.issuer is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
        world.vendor.store.count() < result.reports or world.issuer.store.count() < result.settlements
    ):
        time.sleep(0.05)
    result.delivered = world.vendor.store.count()
    result.settlements_delivered = world.issuer.store.count()
    result.resends = world.vendor.store.duplicates + world.issuer.store.duplicates


def _report(result: FleetResult, as_json: bool, faults: dict[str, int] | None = None) -> None:
    faults = faults or {}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **result.outcome(),
                    **faults,
                    "broker": result.broker,
                    "resends": result.resends,
                    "wall_s": round(result.wall_s, 2),
                    "peak_rss_mb": round(result.peak_rss_mb, 1),
                    "stranded": dict(sorted(result.stranded.items())),
                }
            )
        )
        return
    table = Table(title="Fleet: one school day" if result.days == 1 else f"Fleet: {result.days} school days")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows: list[tuple[str, int | str]] = [
        ("machines", result.machines),
        ("visits (transactions)", result.visits),
        ("sales", result.sales),
        ("revenue (TWD)", result.revenue),
        ("refunds (jams)", result.refunds),
    ]
    if result.top_ups:
        rows.append(("top-ups at stores (TWD)", result.top_ups))
    rows += [(f"denied: {reason}", count) for reason, count in sorted(result.denials.items())]
    rows += [(f"cancelled: {reason}", count) for reason, count in sorted(result.cancellations.items())]
    rows += [
        ("reports produced (vendor)", result.reports),
        ("reports delivered (vendor)", result.delivered),
        ("settlements produced / delivered", f"{result.settlements} / {result.settlements_delivered}"),
        ("resends (copies already stored, skipped)", result.resends),
        ("broker", result.broker),
        ("wall time (s)", f"{result.wall_s:.1f}"),
        ("peak worker RSS (MB)", f"{result.peak_rss_mb:.0f}"),
        *((name.replace("_", " "), value) for name, value in faults.items()),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    Console(width=100).print(table)
