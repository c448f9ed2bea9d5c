"""A term of school days at one machine, through the real machine; the vendor's and issuer's views.

Every day runs the fleet's arrival model for the same students (same cards, same term key) through
the real controller, journal and reporter; the views are read from the machine's own outbox -- the
exact payloads each party would receive -- with each settlement opened with the issuer's key.

``design`` says which pseudonyms the vendor's records carry: ``visit`` is what the machine sends
(one per visit); ``term`` and ``day`` rebuild earlier designs from the same records -- the sale's
``txn`` leads to the card in the machine's own vends table, and the pseudonym is re-derived per term
or per day -- so the attack can be shown to work on the designs it defeated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
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
from simulator.fleet.model import plan_machine, price_list, school_days
from simulator.fleet.runner import CATALOG
from simulator.fleet.worker import school_term_dir, simulate_day
from simulator.privacy.attack import IssuerDay, Sale

FIRST_DAY = date(2026, 3, 2)  # a Monday
DESIGNS = {"visit": "visit", "day": "day", "term": "term"}  # design -> the attack's token scope


@dataclass
class TermViews:
    sales: list[Sale] = field(default_factory=list)
    issuer: dict[str, IssuerDay] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)  # sales per release batch, when the machine batches


def _rebuilt_tokens(db: Path, design: str, key: bytes) -> dict[str, str]:
    """Each sale's txn -> the pseudonym an earlier design would have sent (per term, or per card and day)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT txn_id, uid, local_day FROM vends").fetchall()
    tokens = {}
    for txn, uid, day in rows:
        message = uid if design == "term" else f"{day}|{uid}"
        tokens[txn] = base64.b32encode(hmac.new(key, message.encode(), hashlib.sha256).digest()[:16]).decode()
    return tokens


def read_day(db: Path, keys: DevKeys, machine: str, views: TermViews, design: str = "visit", key: bytes = b"") -> None:
    """Add one machine-day's outbox to the views."""
    rebuilt = _rebuilt_tokens(db, design, key) if design != "visit" else {}
    outbox = Outbox.open(db)
    try:
        for topic, payload in outbox.payloads():
            body = json.loads(payload)
            if topic.endswith("/sale") and body["outcome"] == "vended":
                token = rebuilt.get(body["txn"]) if rebuilt else body.get("pseudonym")
                views.sales.append(Sale(body["time"][:10], body["price"], token))
            elif topic.endswith("/settlement"):
                verify = lambda e: keys.enrolment.verify(machine, e)  # noqa: E731
                document = open_settlement(body["sealed"], keys.seal_private, verify)
                settled = views.issuer.setdefault(document["day"], IssuerDay())
                for card in document["cards"]:
                    if isinstance(card, str):  # day_total: the card took part; its amount is not told
                        settled.withheld = True
                        settled.cards[card] = (0, 0)
                    else:
                        settled.cards[card["uid"]] = (card["amount"], card["count"])
    finally:
        outbox.close()


def term_views(
    days: int, students: int, seed: int, settlement: str, design: str = "visit", keep: Path | None = None
) -> TermViews:
    """``days`` school days at one machine; ``keep`` keeps each day's state dir (machine.db) there."""
    if design not in DESIGNS:
        raise ValueError(f"design: expected one of {sorted(DESIGNS)}, got {design!r}")
    catalog = load_catalog(CATALOG)
    prices = price_list(catalog)
    views = TermViews()
    with tempfile.TemporaryDirectory(prefix="term-") as tmp:
        root = keep or Path(tmp)
        keys = DevKeys(Path(tmp) / "keys")
        key = b""
        for day in school_days(days, FIRST_DAY):
            plan = plan_machine(0, day, students, seed, prices)
            plan.config["settlement"] = settlement
            state_dir = root / day.isoformat()
            simulate_day(plan, catalog, state_dir, keys, term_start=FIRST_DAY)  # one term, one key
            key = key or read_key(school_term_dir(keys, plan.machine_id)).key
            read_day(state_dir / "machine.db", keys, plan.machine_id, views, design, key)
            if keep is None:
                shutil.rmtree(state_dir)
    return views
