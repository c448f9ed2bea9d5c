"""``vending backend issuer``: the card issuer's backend, and its own orders on issuer-held accounts.

Run it (no subcommand) to store sealed settlements and account outcomes and to answer the machines'
authorisation requests; ``open``, ``topup``, ``link`` and ``cap`` are the issuer's orders on an
account (``payment: {mode: account}``), each applied in one transaction on the issuer's database and
kept signed by the issuer's key; ``accounts`` lists them; ``purses`` is the audit of purse cards.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from firmware.errors import VendingError
from firmware.identity.keyset import HOTLIST, SEAL, read_seal_key, read_shared_key
from simulator.cli.connection import Amqp, CaFile, CertFile, CertKey, Password, Username, amqp_address, broker_address
from simulator.cli.exits import day_option, existing_db, fail, sqlite_file
from simulator.cli.reporting import (
    RetentionDays,
    RetentionNow,
    SchoolKey,
    await_subscription,
    enrolled_machines,
    party_identity,
    requests_note,
    retention_from,
    school_public_key,
    serve_forever,
)

issuer_app = typer.Typer(help="The card issuer's backend: run it (no subcommand), or act on its accounts.")
Key = Annotated[Path, typer.Option(help="The issuer's signing key (issuer.key): its orders are kept signed with it.")]
OPENED_BY = "`vending backend issuer open`"  # the issuer's database for accounts starts with one
Db = Annotated[Path, typer.Option(help="The issuer's SQLite file.", callback=sqlite_file("the issuer's"))]
Card = Annotated[str, typer.Option(help="The card's uid (hex), as printed on the issuer's records.")]
MajorityAge = Annotated[
    int,
    typer.Option(min=14, max=25, help="Below this age an account pays only with a guardian's consent (18 since 2023)."),
]


@issuer_app.callback(invoke_without_command=True)
def backend_issuer(
    context: typer.Context,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port or mqtts://host:port")] = None,
    key: Annotated[Path | None, typer.Option(help="The issuer's signing key (issuer.key).")] = None,
    machines: Annotated[
        Path | None, typer.Option(help="Enrolment directory: <machine-id>.pub for every machine this backend accepts.")
    ] = None,
    seal_key: Annotated[
        Path | None, typer.Option(help=f"The issuer's X25519 key (default: {SEAL}.key beside --key).")
    ] = None,
    db: Annotated[
        Path, typer.Option(help="SQLite file for settlements and accounts.", callback=sqlite_file("the issuer's"))
    ] = Path("issuer.db"),
    majority_age: MajorityAge = 18,
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
    retention_days: RetentionDays = None,
    now: RetentionNow = None,
    school_key: SchoolKey = None,
    amqp: Amqp = None,
) -> None:
    """Store sealed settlements and account outcomes; answer machines' authorisation requests on accounts.

    Each sealed document counts only if the machine's signature inside is its enrolled key.

    Needs --broker, --key and --machines. The subcommands act on the accounts in --db instead.
    """
    if context.invoked_subcommand is not None:
        return
    given = (("--broker", broker), ("--key", key), ("--machines", machines))
    missing = [name for name, value in given if value is None]
    if missing:
        fail(f"vending backend issuer needs {', '.join(missing)} (or a subcommand: open, topup, link, cap, accounts)")
    assert broker is not None and key is not None and machines is not None
    from simulator.backends.issuer import IssuerBackend

    today = retention_from(now, retention_days)
    address = broker_address(broker, username, password, ca, cert, cert_key)
    queue = amqp_address(amqp, ca, cert, cert_key)
    identity = party_identity("issuer", key)
    try:
        seal = read_seal_key(seal_key or key.with_name(f"{SEAL}.key"))
    except VendingError as exc:
        fail(exc)
    school = school_public_key(school_key)
    enrolment = enrolled_machines(machines)
    try:  # the lost-card key also names and seals the pending credits of operators' refunds to purse cards
        hotlist = read_shared_key(key.parent, HOTLIST)
    except VendingError as exc:
        fail(exc)
    service = IssuerBackend(address, db, seal, identity, enrolment, school=school, majority_age=majority_age,
                            hotlist_key=hotlist)  # fmt: skip
    if queue is not None:
        service.use_amqp(queue)
    service.start()
    await_subscription(service)
    source = f"{amqp} (queue issuer.reports)" if amqp else str(address)
    typer.echo(f"issuer backend on {source}, storing in {db}{requests_note(school)}; Ctrl-C to stop")
    serve_forever(service, retention_days, today)


def _order(db: Path, key: Path, order: dict[str, Any]) -> None:
    """Apply one order on the accounts in ``db``, signed by ``key``; print the account after it."""
    from simulator.backends.accounts import AccountBook, AccountError
    from simulator.backends.signer import ForeignSigner
    from simulator.backends.store import SqliteReportStore

    if order["order"] != "open":  # only an account's opening may make the database
        existing_db(db, OPENED_BY)
    identity = party_identity("issuer", key)
    store = SqliteReportStore(db, "issuer")
    try:
        account = AccountBook(store).order(identity, order)
    except (AccountError, ForeignSigner) as exc:
        fail(exc)
    finally:
        store.close()
    cap = "none" if account.daily_cap is None else f"NT${account.daily_cap}/day"
    guardian = "linked" if account.guardian else "none"
    typer.echo(
        f"{order['order']}: {account.uid} {account.profile}, balance NT${account.balance}, guardian {guardian}, "
        f"cap {cap}{', paused' if account.paused else ''}"
    )


@issuer_app.command("open")
def open_account(
    card: Card,
    profile: Annotated[str, typer.Option(help="student or staff")],
    born: Annotated[str, typer.Option(help="The holder's date of birth (YYYY-MM-DD): a minor needs a guardian.")],
    key: Key,
    db: Db = Path("issuer.db"),
    today: Annotated[str | None, typer.Option(help="Open as of this day (YYYY-MM-DD); default: today.")] = None,
) -> None:
    """Open an account for a card (from age 14; a minor's pays only once a guardian is linked)."""
    day_option(born, "--born")
    day = day_option(today, "--today") if today else date.today()
    _order(db, key, {"order": "open", "card": card, "profile": profile, "born": born, "day": day.isoformat()})


@issuer_app.command("topup")
def topup(
    card: Card,
    amount: Annotated[int, typer.Option(min=1, max=10_000, help="NT$ added (a store or bank top-up).")],
    key: Key,
    db: Db = Path("issuer.db"),
) -> None:
    """Add money to an account."""
    _order(db, key, {"order": "topup", "card": card, "amount": amount})


@issuer_app.command("link")
def link(
    card: Card,
    key: Key,
    guardian: Annotated[
        str | None, typer.Option(help="The guardian's own account (its reference at the issuer): their consent.")
    ] = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="Withdraw the guardian's consent.")] = False,
    db: Db = Path("issuer.db"),
) -> None:
    """Link a guardian's account to a minor's (their consent), or withdraw it."""
    if (guardian is None) == (not unlink):
        fail("link needs exactly one of --guardian G or --unlink")
    _order(db, key, {"order": "link", "card": card, "guardian": None if unlink else guardian})


@issuer_app.command("cap")
def cap(
    card: Card,
    key: Key,
    daily: Annotated[int | None, typer.Option(min=0, help="The guardian's cap per day, NT$.")] = None,
    no_cap: Annotated[bool, typer.Option("--no-cap", help="Remove the daily cap.")] = False,
    pause: Annotated[bool | None, typer.Option("--pause/--resume", help="Pause or resume the account.")] = None,
    db: Db = Path("issuer.db"),
) -> None:
    """A guardian's controls on the account: a daily cap, a pause."""
    if daily is not None and no_cap:
        fail("cap takes --daily N or --no-cap, not both")
    if daily is None and not no_cap and pause is None:
        fail("cap needs --daily N, --no-cap, --pause or --resume")
    order: dict[str, Any] = {"order": "cap", "card": card}
    if daily is not None or no_cap:
        order["daily_cap"] = daily
    if pause is not None:
        order["paused"] = pause
    _order(db, key, order)


@issuer_app.command("accounts")
def accounts(
    db: Db = Path("issuer.db"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per account.")] = False,
) -> None:
    """The accounts with their balances, guardians' consent and caps, and the offline debts declined."""
    from simulator.backends.accounts import AccountBook
    from simulator.backends.store import SqliteReportStore

    existing_db(db, OPENED_BY)
    store = SqliteReportStore(db, "issuer")
    try:
        book = AccountBook(store)
        uids = [str(uid) for (uid,) in store.execute("SELECT uid FROM accounts ORDER BY uid")]
        rows = [book.get(uid) for uid in uids]
        debts = book.declined_debts()
    finally:
        store.close()
    if as_json:
        for account in rows:
            if account is not None:
                typer.echo(json.dumps(account.__dict__ | {"guardian": account.guardian is not None}))
        return
    table = Table("card", "profile", "born", "balance", "guardian", "cap", "paused")
    for account in rows:
        if account is not None:
            cap_text = "" if account.daily_cap is None else str(account.daily_cap)
            linked = "linked" if account.guardian else ""
            table.add_row(account.uid, account.profile, account.born, str(account.balance), linked, cap_text,
                          "yes" if account.paused else "")  # fmt: skip
    Console().print(table)
    if debts:
        typer.echo(f"offline debts declined: {len(debts)}, NT${sum(amount for _, _, amount in debts)}")


FOLDED = ("machine", "txn", "card", "detail", "reviewed")  # long ids and text: folded where the width is short


def _folding_table(title: str, *columns: str) -> Table:
    """A table whose cells never end in "…": a card number, a txn or a date cut short is no audit."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column not in FOLDED)
    return table


@issuer_app.command("purses")
def purses(
    db: Db = Path("issuer.db"),
    keys: Annotated[
        Path | None,
        typer.Option(help="The issuer's key directory: with its card-master.key every step's MAC is checked too."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON object a line: incidents, left steps.")] = False,
) -> None:
    """Purse cards across every machine: counter incidents, and the steps machines left to the issuer.

    Each left step with its verdict (``made``, ``not_made``, ``unknown`` until the card's next step is
    settled, or for good after a store's top-up: `vending issuer verdict`), a reviewer's reason where one
    decided it, and what the issuer listed for the card when it acted on it. Reads only.
    """
    from firmware.cards.purse import Sam
    from firmware.identity.keyset import read_card_master
    from simulator.backends import purse_audit
    from simulator.backends.store import SqliteReportStore

    existing_db(db, "the issuer's backend")
    try:
        sam = Sam(read_card_master(keys)) if keys is not None else None
    except VendingError as exc:
        fail(f"--keys: {exc}")
    store = SqliteReportStore(db, "issuer")
    try:
        found, left = purse_audit.counter_incidents(store, sam), purse_audit.audit(store)
    finally:
        store.close()
    if as_json:
        for incident in found:
            typer.echo(json.dumps({"incident": incident.__dict__}))
        for one in left:
            typer.echo(json.dumps({"left": one.step.__dict__ | {"day": one.day, "listed": one.listed,
                                                                "reviewed": one.reviewed}}))  # fmt: skip
        return
    if found:
        table = _folding_table("counter incidents", "card", "counter", "incident", "detail")
        for incident in found:
            table.add_row(incident.uid, str(incident.counter), incident.kind, incident.detail)
        Console().print(table)
    if left:
        reviewed = ("reviewed",) if any(one.reviewed for one in left) else ()  # a reviewer's reason, if any gave one
        columns = ("day", "machine", "txn", "card", "counter", "amount", "verdict", "listed", *reviewed)
        table = _folding_table("left steps", *columns)
        for one in left:
            step, listed = one.step, "not yet" if one.listed is None else f"NT${one.listed}"
            reason = (one.reviewed or "",) if reviewed else ()
            table.add_row(one.day, step.machine, step.txn, step.uid, str(step.counter), str(step.amount),
                          step.verdict, listed, *reason)  # fmt: skip
        Console().print(table)
    owed = sum(one.listed or 0 for one in left)
    checked = "MACs checked" if sam is not None else "MACs not checked (no --keys)"
    typer.echo(f"{len(found)} counter incident(s), {checked}; {len(left)} left step(s), NT${owed} listed for cards")
