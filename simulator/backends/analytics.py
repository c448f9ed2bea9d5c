"""k-anonymous sales aggregates from the vendor's database: what a vendor may share or publish.

A cell (for example one product on one day, or in one hour) built from fewer than ``k`` distinct
buyers is suppressed: its counts are not shown, so a table cannot single out a child's purchase. The
vendor's pseudonyms name visits (docs/privacy.md), so "distinct buyers" here counts distinct visit
pseudonyms, which never undercounts people; sales without a pseudonym count as no buyer (a cell of
them alone is suppressed). No totals are printed, so no suppressed cell can be recovered as the
difference between a total and the cells shown.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

DIMENSIONS = ("machine", "product", "day", "hour")
SUPPRESSED = "suppressed"


def _key(row: tuple[Any, ...], dimensions: list[str]) -> tuple[str, ...]:
    machine, time, product = str(row[0]), str(row[1]), str(row[2])
    values = {"machine": machine, "product": product, "day": time[:10], "hour": time[11:13]}
    return tuple(values[d] for d in dimensions)


def aggregate(store: Any, dimensions: list[str], k: int, machine: str | None = None) -> list[list[Any]]:
    """Rows of (dimension values..., buyers, items, revenue), sorted; cells under k show as suppressed."""
    buyers: dict[tuple[str, ...], set[str]] = defaultdict(set)
    items: dict[tuple[str, ...], int] = defaultdict(int)
    revenue: dict[tuple[str, ...], int] = defaultdict(int)
    rows = store.execute("SELECT machine, time, product, price, pseudonym FROM sales WHERE outcome = 'vended'")
    for row in rows:
        if machine is not None and row[0] != machine:
            continue
        key = _key(row, dimensions)
        items[key] += 1
        revenue[key] += int(row[3])
        if row[4]:
            buyers[key].add(str(row[4]))
    cells: list[list[Any]] = []
    for key in sorted(items):
        if len(buyers[key]) < k:
            cells.append([*key, f"<{k}", SUPPRESSED, SUPPRESSED])
        else:
            cells.append([*key, len(buyers[key]), items[key], revenue[key]])
    return cells
