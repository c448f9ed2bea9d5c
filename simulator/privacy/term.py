"""A term of school days at one machine, through the real machine; the vendor's and issuer's views.

Every day runs the fleet's arrival model for the same students (same cards, same term key, one
state dir carried from day to day) through the real controller, journal and reporter; the views are
read from the machine's own outbox -- the exact payloads each party would receive -- with each
settlement opened with the issuer's key.

``design`` says what the colluders would hold: ``visit`` is what the machine sends (one pseudonym
per visit; the issuer's per-card lines by week with ``per_card``). The others rebuild earlier designs
from the same records, so the attack can be shown to work on the designs it defeated: ``visit-daily``
keeps visit pseudonyms but gives the issuer per-card lines per day (the previous ``per_card``);
``day`` and ``term`` rebuild per-card-and-day and per-card-and-term pseudonyms (the sale's ``txn``
leads to the card in the machine's own vends table), with per-day per-card lines under ``per_card``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from firmware.config.catalog import load_catalog
from firmware.identity.keys import read_key
from firmware.journal.outbox import Outbox
from firmware.reporting.sealed import open_settlement
from simulator.dev_keys import DevKeys
from simulator.fleet.model import plan_machine, school_days, stockable
from simulator.fleet.runner import CATALOG
from simulator.fleet.worker import school_term_dir, simulate_day
from simulator.privacy.attack import IssuerDay, Sale

FIRST_DAY = date(2026, 3, 2)  # a Monday
DESIGNS = {"visit": "visit", "visit-daily": "visit", "day": "day", "term": "term"}  # design -> token scope
DAILY_LINES = ("visit-daily", "day", "term")  # designs whose issuer had per-card lines per day (rebuilt)


@dataclass
class TermViews:
    """What the vendor and the issuer hold; ``issuer`` is keyed by settlement period (a day, or an ISO week)."""

    sales: list[Sale] = field(default_factory=list)  # day = the school day of the sale
    issuer: dict[str, IssuerDay] = field(default_factory=dict)
    covered: dict[str, list[str]] = field(default_factory=dict)  # period -> the school days it settles


def _rebuilt_tokens(db: Path, design: str, key: bytes) -> dict[str, str]:
    """Each sale's txn -> the pseudonym an earlier design would have sent (per term, or per card and day)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT txn_id, uid, local_day FROM vends").fetchall()
    tokens = {}
    for txn, uid, day in rows:
        message = uid if design == "term" else f"{day}|{uid}"
        tokens[txn] = base64.b32encode(hmac.new(key, message.encode(), hashlib.sha256).digest()[:16]).decode()
    return tokens


def _daily_lines(db: Path, views: TermViews) -> None:
    """The issuer's view under the previous ``per_card``: each card's amount and count per day."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT local_day, uid, SUM(price), COUNT(*) FROM vends WHERE status = 'completed' GROUP BY local_day, uid"
        ).fetchall()
    for day, uid, amount, count in rows:
        views.issuer.setdefault(day, IssuerDay()).cards[uid] = (int(amount), int(count))
        views.covered[day] = [day]


def read_outbox(
    db: Path, keys: DevKeys, machine: str, views: TermViews, design: str, key: bytes, settlement: str
) -> None:
    """Add a machine's outbox (every report it made, none acked) to the views."""
    rebuilt = _rebuilt_tokens(db, design, key) if design in ("day", "term") else {}
    daily = settlement == "per_card" and design in DAILY_LINES
    outbox = Outbox.open(db)
    try:
        for topic, payload in outbox.payloads():
            body = json.loads(payload)
            if topic.endswith("/sale") and body["outcome"] == "vended":
                token = rebuilt.get(body["txn"]) if rebuilt else body.get("pseudonym")
                views.sales.append(Sale(body["time"][:10], body["price"], token, body["time"]))
            elif topic.endswith("/settlement"):
                verify = lambda e: keys.enrolment.verify(machine, e)  # noqa: E731
                _settlement(open_settlement(body["sealed"], keys.seal_private, verify), views, daily)
    finally:
        outbox.close()
    if daily:
        _daily_lines(db, views)


def _settlement(document: dict, views: TermViews, daily: bool) -> None:
    cards = document.get("cards")
    if "week" in document and cards is not None and not daily:  # per_card: each card's week
        period = document["week"]
        views.covered[period] = list(document["days"])
        views.issuer[period] = IssuerDay({c["uid"]: (c["amount"], c["count"]) for c in cards})
    elif "day" in document and cards is not None:  # day_total: which cards took part, no amounts
        settled = views.issuer.setdefault(document["day"], IssuerDay(withheld=True))
        settled.cards.update({uid: (0, 0) for uid in cards})
        views.covered[document["day"]] = [document["day"]]


def term_views(days: int, students: int, seed: int, settlement: str, design: str = "visit") -> TermViews:
    """``days`` school days at one machine, one state dir for the whole term."""
    if design not in DESIGNS:
        raise ValueError(f"design: expected one of {sorted(DESIGNS)}, got {design!r}")
    catalog = load_catalog(CATALOG)
    products = stockable(catalog)
    views = TermViews()
    with tempfile.TemporaryDirectory(prefix="term-") as tmp:
        keys = DevKeys(Path(tmp) / "keys")
        state_dir = Path(tmp) / "machine"
        machine = ""
        for day in school_days(days, FIRST_DAY):
            plan = plan_machine(0, day, students, seed, products)
            plan.config["settlement"] = settlement
            machine = plan.machine_id
            simulate_day(plan, catalog, state_dir, keys, term_start=FIRST_DAY)  # one term, one key
        key = read_key(school_term_dir(keys, machine)).key
        read_outbox(state_dir / "machine.db", keys, machine, views, design, key, settlement)
    return views
