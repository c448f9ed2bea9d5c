"""``vending school controls ...``: the school's tool for guardians' decisions during the term.

``set`` records a guardian's decision about one student (linked, daily limit, limits per period,
blocked categories, kinds and allergens, a low-balance threshold) and pushes every decision on record
to the school's machines; ``periods`` sets the school's periods of the day; ``publish`` pushes again
(before ``--valid-hours`` run out); ``show`` lists the decisions by student. A refused option names
itself and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from firmware.domain import WHOLE_NUMBER
from firmware.errors import VendingError
from simulator.cli.connection import CaFile, CertFile, CertKey, Password, Username, broker_address
from simulator.cli.exits import existing_db, fail, sqlite_file
from simulator.cli.reporting import party_identity, shared_key

if TYPE_CHECKING:
    from simulator.school.controls import SchoolControls

controls_app = typer.Typer(no_args_is_help=True, help="Guardians' controls on students' cards, pushed to machines.")

ROSTER_IMPORT = "`vending backend school --db DB --roster CSV`"  # what makes the school's database
SCHOOL_DB_HELP = f"The school's database (made by {ROSTER_IMPORT})."
Db = Annotated[Path, typer.Option(help=SCHOOL_DB_HELP, callback=sqlite_file("the school's"))]  # every school --db
Keys = Annotated[Path, typer.Option(help="The school's key directory: school.key and controls.key.")]
Broker = Annotated[str, typer.Option(help="mqtt://host:port or mqtts://host:port of the parties' broker.")]
SchoolCode = Annotated[str, typer.Option("--school", help="The school's code, as its machines' configs have it.")]
ValidHours = Annotated[
    int, typer.Option(min=1, max=24 * 60, help="A machine refuses the push after this long: publish again before.")
]
Many = Annotated[list[str] | None, typer.Option(help="Repeatable; `none` clears the list.")]
NONE = "none"


def _amount(option: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    if text == NONE:
        return {option.replace("-", "_"): None}
    if not WHOLE_NUMBER.fullmatch(text):
        fail(f"--{option} {text!r}: expected whole TWD or `none`")
    return {option.replace("-", "_"): int(text)}


def _listed(field: str, values: list[str] | None) -> dict[str, Any]:
    if values is None:
        return {}
    return {field: [] if values == [NONE] else values}


def _period_limits(current: dict[str, Any], values: list[str] | None) -> dict[str, Any]:
    if not values:
        return {}
    limits = dict(current.get("period_limits", {}))
    given: dict[str, str] = {}
    for value in values:
        name, _, limit = value.partition("=")
        if given.setdefault(name, limit) != limit:  # which one the guardian meant is not ours to guess
            fail(f"--period-limit: {name!r} is given twice, as {given[name]} and {limit}; nothing recorded")
        if limit == NONE:
            limits.pop(name, None)
        elif WHOLE_NUMBER.fullmatch(limit):
            limits[name] = int(limit)
        else:
            fail(f"--period-limit {value!r}: expected PERIOD=TWD (e.g. lunch=60) or PERIOD=none")
    return {"period_limits": limits}


def _push(controls: SchoolControls, school: str, keys: Path, broker: str, valid_hours: int,
          connection: tuple[str | None, str | None, Path | None, Path | None, Path | None]) -> str:  # fmt: skip
    from datetime import UTC, datetime

    from firmware.identity.keyset import CONTROLS
    from simulator.backends.push import publish

    key = shared_key(keys, CONTROLS, "school")
    address = broker_address(broker, *connection)
    try:
        publish(address, [controls.message(school, key, datetime.now(UTC), valid_hours)], "school-controls")
    except (OSError, RuntimeError) as exc:
        fail(f"--broker {address}: {exc} (recorded; `vending school controls publish` sends it)")
    return str(address)


def _open(db: Path, keys: Path | None, school: str | None = None) -> SchoolControls:
    """The controls on the school's database, to be signed by the school's key in ``keys`` (None: only read).

    With ``school``, the code its pushes go to, held to the first push's before anything is changed.
    """
    from simulator.school.controls import SchoolControls
    from simulator.school.store import SchoolStore

    existing_db(db, ROSTER_IMPORT)
    signer = party_identity("school", keys / "school.key") if keys is not None else None
    controls = SchoolControls(SchoolStore(db), signer)
    if school is not None:
        try:
            controls.pin_school(school)
        except VendingError as exc:
            controls.store.close()
            fail(exc)
    return controls


@controls_app.command("set")
def controls_set(
    db: Db, student: Annotated[str, typer.Option(help="The student's id on the roster.")], keys: Keys,
    broker: Broker, school: SchoolCode,
    linked: Annotated[bool | None, typer.Option("--linked/--not-linked", help="May the card pay at all.")] = None,
    daily_limit: Annotated[str | None, typer.Option(help="TWD a day, or `none`.")] = None,
    period_limit: Annotated[list[str] | None, typer.Option(help="PERIOD=TWD or PERIOD=none; repeatable.")] = None,
    block_category: Many = None, block_kind: Many = None, block_allergen: Many = None,
    low_balance: Annotated[str | None, typer.Option(help="Tell the guardian below this balance (TWD), or `none`.")]
    = None,
    clear: Annotated[bool, typer.Option("--clear", help="Start from no controls at all.")] = False,
    valid_hours: ValidHours = 24 * 7,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """Record a guardian's decision about a student's card and push the school's controls to its machines."""
    from datetime import UTC, datetime

    controls = _open(db, keys, school)
    try:
        current = {} if clear else controls.decisions().get(student, {})
        changes = {"linked": linked} if linked is not None else {}
        changes |= _amount("daily-limit", daily_limit) | _amount("low-balance", low_balance)
        changes |= _period_limits(current, period_limit) | _listed("blocked_categories", block_category)
        changes |= _listed("blocked_kinds", block_kind) | _listed("blocked_allergens", block_allergen)
        version = controls.decide(student, changes, datetime.now(UTC), clear=clear)
        address = _push(controls, school, keys, broker, valid_hours, (username, password, ca, cert, cert_key))
        typer.echo(f"controls version {version}: {student} recorded; pushed to {address}, valid {valid_hours} h")
    except VendingError as exc:
        fail(exc)
    finally:
        controls.store.close()


@controls_app.command("periods")
def controls_periods(
    db: Db, keys: Keys, broker: Broker, school: SchoolCode,
    period: Annotated[list[str], typer.Option(help="NAME=HH:MM-HH:MM (e.g. lunch=12:00-13:30); repeatable.")],
    valid_hours: ValidHours = 24 * 7,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """Set the school's periods of the day (replacing all of them) and push them with the controls."""
    from datetime import UTC, datetime

    periods: dict[str, dict[str, str]] = {}
    for value in period:
        name, _, span = value.partition("=")
        start, dash, end = span.partition("-")
        if not dash:
            fail(f"--period {value!r}: expected NAME=HH:MM-HH:MM")
        if name in periods:  # the last one won: which span the school meant is not ours to guess
            fail(f"--period: {name!r} is given twice; nothing recorded")
        periods[name] = {"from": start, "to": end}
    controls = _open(db, keys, school)
    try:
        version = controls.set_periods(periods, datetime.now(UTC))
        address = _push(controls, school, keys, broker, valid_hours, (username, password, ca, cert, cert_key))
        typer.echo(f"controls version {version}: {len(periods)} period(s); pushed to {address}")
    except VendingError as exc:
        fail(exc)
    finally:
        controls.store.close()


@controls_app.command("publish")
def controls_publish(
    db: Db, keys: Keys, broker: Broker, school: SchoolCode, valid_hours: ValidHours = 24 * 7,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """Push the controls on record again (a newer expiry; run before --valid-hours run out)."""
    controls = _open(db, keys, school)
    try:
        address = _push(controls, school, keys, broker, valid_hours, (username, password, ca, cert, cert_key))
        count = len(controls.decisions())
        typer.echo(f"controls version {controls.version()}: {count} student(s); pushed to {address}")
    finally:
        controls.store.close()


@controls_app.command("show")
def controls_show(db: Db, as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """The school's periods and every guardian's decision on record, by student (the school's eyes only)."""
    controls = _open(db, None)
    try:
        version, periods, students = controls.version(), controls.periods(), controls.decisions()
    finally:
        controls.store.close()
    if as_json:
        typer.echo(json.dumps({"version": version, "periods": periods, "students": students}, sort_keys=True))
        return
    spans = ", ".join(f"{name} {span['from']}-{span['to']}" for name, span in periods.items())
    typer.echo(f"version {version}; periods: {spans}")
    for student, decided in students.items():
        shown = {k: v for k, v in decided.items() if v not in (None, [], {})}
        typer.echo(f"{student}: {json.dumps(shown, sort_keys=True)}")
