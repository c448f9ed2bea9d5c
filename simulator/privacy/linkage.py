"""How many vendor pseudonyms an issuer + vendor join pins to exactly one card, on a simulated school day.

The day runs through the real machine (controller, journal, reporter) and the views are read from
the machine's own outbox -- the exact payloads each party would receive -- with the issuer's sealed
settlement opened with its key. The join uses only what both parties hold: machine, day and amounts.

Run: .venv/bin/python -m simulator.privacy.linkage --students 300 --seed 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from firmware.config.catalog import load_catalog
from firmware.journal.outbox import Outbox
from firmware.reporting.sealed import open_settlement
from simulator.dev_keys import DevKeys
from simulator.fleet.model import plan_machine
from simulator.fleet.runner import CATALOG
from simulator.fleet.worker import simulate_day

Totals = tuple[int, int]  # (amount, count) for one card or pseudonym on one day


@dataclass(frozen=True)
class Views:
    vendor: dict[str, Totals]  # pseudonym -> what the vendor can add up from sale reports
    issuer: dict[str, Totals]  # card uid -> the settlement line


def pinned_share(views: Views, key: Callable[[Totals], Hashable]) -> float:
    """Share of pseudonyms whose join key matches exactly one card and no other pseudonym."""
    if not views.vendor:
        return 0.0
    cards_by_key = Counter(key(t) for t in views.issuer.values())
    pseudonyms_by_key = Counter(key(t) for t in views.vendor.values())
    pinned = sum(1 for t in views.vendor.values() if cards_by_key[key(t)] == 1 and pseudonyms_by_key[key(t)] == 1)
    return pinned / len(views.vendor)


def views_from_outbox(db: Path, keys: DevKeys, machine: str) -> Views:
    outbox = Outbox.open(db)
    vendor: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    issuer: dict[str, Totals] = {}
    for topic, payload in outbox.payloads():
        body = json.loads(payload)
        if topic.endswith("/sale") and body["outcome"] == "vended" and body["pseudonym"]:
            totals = vendor[body["pseudonym"]]
            totals[0] += body["price"]
            totals[1] += 1
        elif topic.endswith("/settlement"):
            document = open_settlement(body["sealed"], keys.seal_private, lambda e: keys.enrolment.verify(machine, e))
            for card in document["cards"]:
                if isinstance(card, str):  # day_total: the card took part; its amount is not told
                    issuer[card] = (-1, -1)
                else:
                    issuer[card["uid"]] = (card["amount"], card["count"])
    outbox.close()
    return Views({p: (t[0], t[1]) for p, t in vendor.items()}, issuer)


def day_views(students: int, seed: int, settlement: str, day: date = date(2026, 3, 2)) -> Views:
    """One machine's day (the fleet's arrival model) through the real machine; the parties' views."""
    catalog = load_catalog(CATALOG)
    plan = plan_machine(0, day, students, seed, {pid: p.price for pid, p in catalog.products.items()})
    plan.config["settlement"] = settlement
    with tempfile.TemporaryDirectory() as tmp:
        keys = DevKeys(Path(tmp) / "keys")
        simulate_day(plan, catalog, Path(tmp) / "machine", keys)
        return views_from_outbox(Path(tmp) / "machine" / "machine.db", keys, plan.machine_id)


def join_key(views: Views) -> Callable[[Totals], Hashable]:
    """What an issuer + vendor join can match on: the amounts, unless the settlement withholds them."""
    withheld = any(t == (-1, -1) for t in views.issuer.values())
    return (lambda t: "took part") if withheld else (lambda t: t)


def measure(students: int, seed: int) -> dict[str, float | int]:
    per_card = day_views(students, seed, "per_card")
    day_total = day_views(students, seed, "day_total")
    return {
        "students": students,
        "buying_cards": len(per_card.issuer),
        "pseudonyms": len(per_card.vendor),
        "pinned_per_card_settlement": round(pinned_share(per_card, join_key(per_card)), 4),
        "pinned_per_card_settlement_amount_only": round(pinned_share(per_card, lambda t: t[0]), 4),
        "pinned_day_total_settlement": round(pinned_share(day_total, join_key(day_total)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.students, args.seed), indent=2))


if __name__ == "__main__":
    main()
