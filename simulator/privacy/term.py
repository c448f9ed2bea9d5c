"""A term of school days at one machine, through the real machine; the vendor's and issuer's views.

Every day runs the fleet's arrival model for the same students (same cards, same term key, one
state dir carried from day to day) through the real controller, journal and reporter; the views are
read from the machine's own outbox -- the exact payloads each party would receive -- with each
settlement opened with the issuer's key.

``design`` says what the colluders would hold: ``visit`` is what the machine sends (one pseudonym
per visit; the issuer's per-card lines per four-week period with ``per_card``). The others rebuild
earlier designs from the same records, so the attack can be shown to work on the designs it
defeated: ``visit-weekly`` and ``visit-daily`` keep visit pseudonyms but give the issuer per-card
lines per ISO week (the previous ``per_card``) or per day (the one before);
``day`` and ``term`` rebuild per-card-and-day and per-card-and-term pseudonyms (the sale's ``txn``
leads to the card in the machine's own vends table), with per-day per-card lines under ``per_card``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path

from firmware.config.catalog import load_catalog
from firmware.identity.keys import read_key
from firmware.journal.outbox import Outbox
from firmware.journal.owner import reading
from firmware.journal.vends import settlement_period
from firmware.reporting.sealed import open_settlement
from simulator.dev_keys import DevKeys
from simulator.fleet.model import plan_machine, school_days, stockable
from simulator.fleet.runner import CATALOG
from simulator.fleet.worker import school_term_dir, simulate_day
from simulator.privacy.attack import IssuerDay, Sale, Timed

FIRST_DAY = date(2026, 3, 2)  # a Monday
DESIGNS = {"visit": "visit", "visit-weekly": "visit", "visit-daily": "visit", "day": "day", "term": "term"}  # -> scope


@dataclass
class TermViews:
    """What the vendor and the issuer hold; ``issuer`` is keyed by settlement period (a day, a week, four weeks)."""

    sales: list[Sale] = field(default_factory=list)  # day = the school day of the sale
    issuer: dict[str, IssuerDay] = field(default_factory=dict)
    covered: dict[str, list[str]] = field(default_factory=dict)  # period -> the school days it settles
    reports: list[Timed] = field(default_factory=list)  # the vendor's alerts and stock snapshots, with their time


def _rebuilt_tokens(db: Path, design: str, key: bytes) -> dict[str, str]:
    """Each sale's txn -> the pseudonym an earlier design would have sent (per term, or per card and day)."""
    with reading(db, "machine") as connection:
        rows = connection.execute("SELECT txn_id, uid, local_day FROM vends").fetchall()
    tokens = {}
    for txn, uid, day in rows:
        message = uid if design == "term" else f"{day}|{uid}"
        tokens[txn] = base64.b32encode(hmac.new(key, message.encode(), hashlib.sha256).digest()[:16]).decode()
    return tokens


def _rebuilt_lines(db: Path, views: TermViews, period_of: Callable[[str], str]) -> None:
    """The issuer's view under an earlier ``per_card``: each card's amount and count per day or per week."""
    with reading(db, "machine") as connection:
        rows = connection.execute(
            "SELECT local_day, uid, price FROM vends WHERE status = 'completed' ORDER BY local_day"
        ).fetchall()
    for day, uid, price in rows:
        period = period_of(day)
        amount, count = views.issuer.setdefault(period, IssuerDay()).cards.get(uid, (0, 0))
        views.issuer[period].cards[uid] = (amount + int(price), count + 1)
        days = views.covered.setdefault(period, [])
        if day not in days:
            days.append(day)


REBUILT_LINES: dict[str, Callable[[str], str]] = {
    "visit-daily": str,
    "day": str,
    "term": str,
    "visit-weekly": partial(settlement_period, weeks=1),  # an ISO week
}


def read_outbox(
    db: Path, keys: DevKeys, machine: str, views: TermViews, design: str, key: bytes, settlement: str
) -> None:
    """Add a machine's outbox (every report it made, none acked) to the views."""
    rebuilt = _rebuilt_tokens(db, design, key) if design in ("day", "term") else {}
    rebuilt_lines = settlement == "per_card" and design in REBUILT_LINES
    tapped = _tap_times(db)
    stock: dict[str, int] = {}
    outbox = Outbox.open(db)
    try:
        for topic, payload in outbox.payloads():
            body = json.loads(payload)
            if topic.endswith("/sale") and body["outcome"] == "vended":
                token = rebuilt.get(body["txn"]) if rebuilt else body.get("pseudonym")
                minute = _minute_like(tapped[body["txn"]], body["time"])
                views.sales.append(Sale(body["time"][:10], body["price"], token, body["time"], body["slot"], minute))
            elif topic.endswith("/alert") and body.get("slot"):
                views.reports.append(Timed(body["time"], frozenset({body["slot"]})))
            elif topic.endswith("/stock"):  # a snapshot tells which slots sold since the one before
                now = {slot: state["stock"] for slot, state in body["slots"].items()}
                fewer = frozenset(slot for slot, count in now.items() if count < stock.get(slot, count))
                stock = now
                if fewer:
                    views.reports.append(Timed(body["time"], fewer))
            elif topic.endswith("/settlement"):
                verify = lambda e: keys.enrolment.verify(machine, e)  # noqa: E731
                _settlement(open_settlement(body["sealed"], keys.seal_private, verify), views, rebuilt_lines)
    finally:
        outbox.close()
    if rebuilt_lines:
        _rebuilt_lines(db, views, REBUILT_LINES[design])


def _tap_times(db: Path) -> dict[str, str]:
    """Each vend's true moment, to score the timing attack (the vendor never sees it).

    The drop's journal entry where the journal still has it (what an alert sent at once would carry),
    else the debit a few seconds before it (the journal keeps 90 days; the vends table keeps every vend).
    """
    with reading(db, "machine") as connection:
        debited = connection.execute("SELECT txn_id, at FROM vends").fetchall()
        dropped = connection.execute("SELECT txn_id, at FROM journal WHERE kind = 'vend_completed'").fetchall()
    return {str(txn): str(at) for txn, at in [*debited, *dropped]}


def _minute_like(moment: str, reported: str) -> str:
    """``moment`` to the minute, written as the vendor's times are (local, with the offset of ``reported``)."""
    zone = datetime.fromisoformat(reported).tzinfo
    return datetime.fromisoformat(moment).astimezone(zone).isoformat(timespec="minutes")


def _settlement(document: dict, views: TermViews, rebuilt_lines: bool) -> None:
    cards = document.get("cards")
    if "week" in document and cards is not None and not rebuilt_lines:  # per_card: each card's period
        period = document["week"]
        views.covered[period] = list(document["days"])
        views.issuer[period] = IssuerDay({c["uid"]: (c["amount"], c["count"]) for c in cards})
    elif "day" in document and cards is not None:  # day_total: which cards took part, no amounts
        settled = views.issuer.setdefault(document["day"], IssuerDay(withheld=True))
        settled.cards.update({uid: (0, 0) for uid in cards})
        views.covered[document["day"]] = [document["day"]]


@dataclass(frozen=True)
class SimulatedTerm:
    """A term's machine database and every party's keys, while ``simulated_term`` holds them."""

    db: Path
    keys: DevKeys
    machine: str
    term_keys: Path  # the school's term key directory for the machine


@contextmanager
def simulated_term(days: int, students: int, seed: int, settlement: str) -> Iterator[SimulatedTerm]:
    """``days`` school days at one machine, one state dir and one term key for the whole term."""
    catalog = load_catalog(CATALOG)
    products = stockable(catalog)
    with tempfile.TemporaryDirectory(prefix="term-") as tmp:
        keys = DevKeys(Path(tmp) / "keys")
        state_dir = Path(tmp) / "machine"
        machine = ""
        for day in school_days(days, FIRST_DAY):
            plan = plan_machine(0, day, students, seed, products)
            plan.config["settlement"] = settlement
            machine = plan.machine_id
            simulate_day(plan, catalog, state_dir, keys, term_start=FIRST_DAY)  # one term, one key
        yield SimulatedTerm(state_dir / "machine.db", keys, machine, school_term_dir(keys, machine))


def term_views(days: int, students: int, seed: int, settlement: str, design: str = "visit") -> TermViews:
    """What the vendor and the issuer would hold after ``days`` school days at one machine."""
    if design not in DESIGNS:
        raise ValueError(f"design: expected one of {sorted(DESIGNS)}, got {design!r}")
    with simulated_term(days, students, seed, settlement) as term:
        return views_of(term, design, settlement)


def views_of(term: SimulatedTerm, design: str, settlement: str) -> TermViews:
    """What the colluders would hold of ``term`` under ``design``."""
    views = TermViews()
    read_outbox(term.db, term.keys, term.machine, views, design, read_key(term.term_keys).key, settlement)
    return views
