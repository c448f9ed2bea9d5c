"""``vending school ...`` and ``vending backend school``: the school's roster, and its requests about one student.

Only the school knows who a student is. ``backend school`` imports the roster into the school's
database; ``school export`` and ``school erase`` answer a student's access and erasure requests by
reading whole slices of the vendor's and the issuer's data, the same whoever asked, and finding the
student in them (simulator/school/subject.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from firmware.errors import VendingError
from firmware.identity.signing import Identity, PublicKey
from simulator.cli.connection import CaFile, CertFile, CertKey, Password, Username, broker_address
from simulator.cli.exits import day_option, existing_db, fail, seconds_option, unwritable, write_out
from simulator.cli.school_controls import ROSTER_IMPORT, Db, controls_app

if TYPE_CHECKING:
    from simulator.school.subject import SubjectRecords

school_app = typer.Typer(
    no_args_is_help=True, help="The school's tools: a student's access and erasure requests, guardians' controls."
)
school_app.add_typer(controls_app, name="controls")

StudentId = Annotated[str, typer.Option(help="The student's id on the roster.")]
Term = Annotated[str, typer.Option(help="The term whose records to find, e.g. 2026-1.")]
Terms = Annotated[Path, typer.Option(help="The school's term keys: DIR/term_key.json or DIR/<machine>/term_key.json.")]
Keys = Annotated[Path, typer.Option(help="The school's key directory: school.key, vendor.pub, issuer.pub.")]
Broker = Annotated[str, typer.Option(help="mqtt://host:port or mqtts://host:port of the parties' broker.")]
Days = Annotated[
    list[str] | None,
    typer.Option("--day", help="Erase only this day's records (repeatable); every day when none is given."),
]
MachineIds = Annotated[
    list[str] | None,
    typer.Option(
        "--machine",
        help="One of the school's machines (repeatable), besides the roster's: every request reads all of them.",
    ),
]
Wait = Annotated[float, typer.Option(help="Seconds to wait for each party's answer.")]


def backend_school(
    db: Db,
    roster: Annotated[
        Path | None, typer.Option(help="Roster CSV: student, card_uid[, profile, machine, linked, daily_limit].")
    ] = None,
    broker: Annotated[str | None, typer.Option(help="Serve guardian alerts from this broker (mqtt[s]://host:port).")]
    = None,
    keys: Annotated[Path | None, typer.Option(help="With --broker: school.key and school-seal.key.")] = None,
    machines: Annotated[Path | None, typer.Option(help="With --broker: the enrolment directory (<id>.pub).")] = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id.")] = None,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """The school backend: import the roster; with --broker, serve the guardian alerts machines seal to it.

    A bad roster line is named and nothing changes. Alerts are stored once each and acked signed.
    """
    from simulator.school.roster import load_roster
    from simulator.school.store import SchoolStore

    if roster is None and broker is None:
        fail("vending backend school needs --roster (import) or --broker (serve guardian alerts), or both")
    if roster is not None:
        try:
            students = load_roster(roster)
        except VendingError as exc:
            fail(exc)
        store = SchoolStore(db)
        try:
            store.replace_roster(students)
            typer.echo(f"school backend: {store.count()} student(s) on the roster in {db} (0600)")
        finally:
            store.close()
    if broker is not None:
        _serve_alerts(db, broker, keys, machines, client_id, (username, password, ca, cert, cert_key))


Connection = tuple[str | None, str | None, Path | None, Path | None, Path | None]


def _serve_alerts(db: Path, broker: str, keys: Path | None, machines: Path | None, client_id: str | None,
                  connection: Connection) -> None:  # fmt: skip
    from firmware.identity.keyset import SCHOOL_SEAL, read_seal_key
    from simulator.backends.school import SchoolBackend
    from simulator.cli.reporting import await_subscription, enrolled_machines, party_identity, serve_forever

    if keys is None or machines is None:
        fail("vending backend school --broker needs --keys (school.key, school-seal.key) and --machines")
    try:
        seal_key = read_seal_key(keys / f"{SCHOOL_SEAL}.key")
    except VendingError as exc:
        fail(exc)
    address = broker_address(broker, *connection)
    identity = party_identity("school", keys / "school.key")
    service = SchoolBackend(address, db, seal_key, identity, enrolled_machines(machines), client_id).start()
    await_subscription(service)
    typer.echo(f"school backend on {address}, storing guardian alerts in {db}; Ctrl-C to stop")
    serve_forever(service)


def _run(
    kind: str,
    db: Path,
    student: str,
    term: str,
    terms: Path,
    keys: Path,
    broker: str,
    days: list[str] | None,
    wait: float,
    connection: tuple[str | None, str | None, Path | None, Path | None, Path | None],
    machines: list[str] | None = None,
) -> SubjectRecords:
    from simulator.school.party_client import PartyClient
    from simulator.school.store import SchoolStore
    from simulator.school.subject import SubjectRequests, TermKeys

    erase_days = [day_option(day) for day in days or []]
    seconds_option(wait)
    existing_db(db, ROSTER_IMPORT)
    address = broker_address(broker, *connection)
    try:
        store = SchoolStore(db)
        who = store.student(student)
        school_machines = [*store.machines(), *(machines or [])]
        store.close()
        term_keys = TermKeys(terms, term)
        identity = Identity.load("school", keys / "school.key")
        parties = {party: PublicKey.load(party, keys / f"{party}.pub") for party in ("vendor", "issuer")}
        with PartyClient(address, identity, parties, wait) as client:
            return SubjectRequests(client, term_keys, school_machines).gather(kind, who, erase_days)
    except VendingError as exc:
        fail(exc)


@school_app.command("alerts")
def alerts(
    db: Db,
    keys: Annotated[Path, typer.Option(help="The school's key directory: controls.key names the cards.")],
    day: Annotated[str | None, typer.Option(help="Only this local day (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per alert.")] = False,
) -> None:
    """The guardian alerts machines sealed to the school, by student: for the school's notification system."""
    from simulator.school.alerts import alerts_by_student

    try:
        found = alerts_by_student(db, keys, day_option(day).isoformat() if day else None)
    except VendingError as exc:
        fail(exc)
    for alert in found:
        if as_json:
            typer.echo(json.dumps(alert, sort_keys=True))
            continue
        facts = ", ".join(
            f"{k} {v}" for k, v in alert.items() if k not in ("student", "alert", "day", "machine", "seq")
        )
        typer.echo(f"{alert['day']}  {alert['student']}  {alert['alert']}  {facts}")
    if not as_json:
        typer.echo(f"{len(found)} alert(s)")


@school_app.command("export")
def export(
    db: Db,
    student: StudentId,
    term: Term,
    terms: Terms,
    keys: Keys,
    broker: Broker,
    out: Annotated[Path, typer.Option(help="Directory for access.json, access.csv and summary.md.")],
    machine: MachineIds = None,
    wait: Wait = 10.0,
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:
    """A student's access request: every party's records of the student in a term, as JSON, CSV and a summary."""
    from simulator.school.export import unfit_for_export, write_export

    if (unfit := unfit_for_export(out)) is not None:  # before any party is asked
        fail(f"--out {out}: {unfit}; nothing asked, nothing written")
    connection = (username, password, ca, cert, cert_key)
    found = _run("access", db, student, term, terms, keys, broker, None, wait, connection, machine)
    try:
        body = write_export(found, out, datetime.now(UTC))
    except VendingError as exc:
        fail(f"--out {exc}")
    except OSError as exc:
        unwritable(f"--out {out}", exc)
    issuer = body["issuer"]
    typer.echo(
        f"{len(body['vendor'])} vendor record(s), {len(issuer['days'])} issuer day(s), "
        f"{len(issuer['weeks'])} issuer week(s) -> {out}/access.json"
    )


@school_app.command("erase")
def erase(
    db: Db,
    student: StudentId,
    term: Term,
    terms: Terms,
    keys: Keys,
    broker: Broker,
    day: Days = None,
    machine: MachineIds = None,
    wait: Wait = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:
    """A student's erasure request: the vendor destroys the student's sales and refusals and says which."""
    connection = (username, password, ca, cert, cert_key)
    found = _run("erase", db, student, term, terms, keys, broker, day, wait, connection, machine)
    receipt = {"student": student, "term": term, "erased": found.records, "read": len(found.asked)}
    if as_json:
        typer.echo(json.dumps(receipt))
        return
    typer.echo(
        f"the vendor erased {len(found.records)} record(s) of {student} in term {term} "
        f"({len(found.asked)} machine-day(s) read in full, {found.read} record(s)); the issuer keeps its money records"
    )


@school_app.command("approve-refund")
def approve_refund(
    keys: Keys,
    machine: Annotated[str, typer.Option(help="The machine that sold it.")],
    txn: Annotated[str, typer.Option(help="The sale's transaction id, as the vendor's report names it.")],
    amount: Annotated[int, typer.Option(min=1, max=100_000, help="The amount the vendor refunds (TWD).")],
    out: Annotated[Path | None, typer.Option(help="Write the approval here (default: standard output).")] = None,
) -> None:
    """The school's signature on one refund above the machine's limit: give it to the vendor's `--approval`."""
    from firmware.domain import MACHINE_ID, MACHINE_ID_RULE, txn_of
    from firmware.reporting.signed import canonical, sign_text
    from simulator.cli.reporting import party_identity

    if not MACHINE_ID.fullmatch(machine):
        fail(f"--machine {machine!r}: {MACHINE_ID_RULE}")
    if not txn_of(machine, txn):
        fail(f"--txn {txn!r}: a transaction of {machine} reads {machine}-<16 hex digits> (as the vendor's report "
             "names it); nothing signed")  # fmt: skip
    identity = party_identity("school", keys / "school.key")
    approval = sign_text(identity, canonical({"approve": "refund", "machine": machine, "txn": txn, "amount": amount}))
    if out is None:
        typer.echo(approval)
        return
    write_out(out, approval + "\n")
    typer.echo(f"approval of NT${amount} on {txn} at {machine} -> {out}")
