"""k-anonymous sales aggregates from the vendor's database: what a vendor may share or publish.

A cell (for example one product on one day, or in one hour) built from fewer than ``k`` distinct
buyers is suppressed: its counts are not shown, so a table cannot single out a child's purchase.

The vendor cannot count a cell's buyers: its pseudonyms name visits (docs/privacy.md), and one
child's five visits are five pseudonyms. Counting them would show a cell one child filled. What the
vendor can do is bound the buyers from below, soundly: each machine's day summary says the most items
one card bought that day, so a cell's n items from that machine-day came from at least
ceil(n / most) cards; a card may buy at several machines and on several days, so a cell spanning
them had at least the largest of its machine-days' bounds. A cell is shown only when that bound
reaches k, and the bound is what it shows as its buyers. A machine-day with no summary yet (the day
still open, or a machine from before the count) bounds nothing, so its cells wait until it closes.
No totals are printed, so no suppressed cell can be recovered as the difference between a total and
the cells shown. Two tables of the same sales at different grains are such a total, though: a
product's day shown beside its hours with one hour hidden gives that hour away by subtraction. So a
vendor shares one grain of a period's sales (docs/privacy.md); this module does not police that.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

DIMENSIONS = ("machine", "product", "day", "hour")
SUPPRESSED = "suppressed"

Cell = tuple[str, ...]
MachineDay = tuple[str, str]


def _key(machine: str, time: str, product: str, dimensions: list[str]) -> Cell:
    values = {"machine": machine, "product": product, "day": time[:10], "hour": time[11:13]}
    return tuple(values[d] for d in dimensions)


def most_by_one_buyer(store: Any) -> dict[MachineDay, int]:
    """Per machine-day, the most items one card bought, from the machines' day summaries."""
    most: dict[MachineDay, int] = {}
    for machine, day, count in store.execute("SELECT machine, day, most_by_one_buyer FROM summaries"):
        if count:  # absent (an older machine) or no sale: bounds nothing
            most[(str(machine), str(day))] = max(int(count), most.get((str(machine), str(day)), 0))
    return most


def buyers_at_least(slices: dict[MachineDay, int], most: dict[MachineDay, int]) -> int:
    """The fewest distinct cards that could have bought a cell's items, given each machine-day's slice of them."""
    bounds = (-(-items // most[part]) for part, items in slices.items() if part in most)
    return max(bounds, default=0)


def aggregate(store: Any, dimensions: list[str], k: int, machine: str | None = None) -> list[list[Any]]:
    """Rows of (dimension values..., buyers at least, items, revenue), sorted; cells under k show as suppressed."""
    slices: dict[Cell, dict[MachineDay, int]] = defaultdict(lambda: defaultdict(int))
    items: dict[Cell, int] = defaultdict(int)
    revenue: dict[Cell, int] = defaultdict(int)
    rows = store.execute("SELECT machine, time, product, price FROM sales WHERE outcome = 'vended'")
    for row in rows:
        seller, time, product = str(row[0]), str(row[1]), str(row[2])
        if machine is not None and seller != machine:
            continue
        key = _key(seller, time, product, dimensions)
        items[key] += 1
        revenue[key] += int(row[3])
        slices[key][(seller, time[:10])] += 1
    most = most_by_one_buyer(store)
    cells: list[list[Any]] = []
    for key in sorted(items):
        buyers = buyers_at_least(slices[key], most)
        if buyers < k:
            cells.append([*key, f"<{k}", SUPPRESSED, SUPPRESSED])
        else:
            cells.append([*key, buyers, items[key], revenue[key]])
    return cells
