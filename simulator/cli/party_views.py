"""What each party learned from a run, as rich tables (the demo's closing output)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.schema import Scenario, uid_tail


def card_ref(uid: str) -> str:
    """The issuer's own short reference for a card, so the demo prints no full card number."""
    return f"card {uid_tail(uid)}"


def _shown(value: object) -> str:
    """A cell as a person reads it: nothing known is a dash (a family or money refusal names no visit)."""
    return "-" if value is None else str(value)


def print_party_views(world: ReportingWorld, scenario: Scenario, console: Console | None = None) -> None:
    console = console or Console(width=150)
    assert world.vendor is not None and world.issuer is not None
    vendor = Table(
        title="Vendor learned: what was sold, each visit under its own pseudonym (no card numbers, no names)"
    )
    for column in ("time", "slot", "product", "price", "outcome", "pseudonym", "profile"):
        vendor.add_column(column)
    rows = [
        tuple(_shown(v) for v in row)
        for row in world.vendor.store.execute(
            "SELECT time, slot, product, price, outcome, pseudonym, profile FROM sales ORDER BY machine, seq"
        )
    ]
    rows += [
        (str(row[0]), "-", _shown(row[2]), "-", f"denied: {row[1]}", _shown(row[3]), _shown(row[4]))
        for row in world.vendor.store.execute("SELECT time, reason, product, pseudonym, profile FROM denials")
    ]
    for row in sorted(rows, key=lambda r: r[0]):  # one day in time order, sales and denials together
        vendor.add_row(*row)
    console.print(vendor)

    issuer = Table(title="Issuer learned: each day's total and which cards took part (no items, no times)")
    for column in ("day", "card", "amount", "count"):
        issuer.add_column(column)
    for day, uid, amount, count in world.issuer.store.execute(
        "SELECT day, uid, amount, count FROM settlements ORDER BY day, uid"
    ):
        issuer.add_row(day, card_ref(uid), "-" if amount is None else str(amount), "-" if count is None else str(count))
    days = "SELECT day, amount, count, refunded FROM settlement_days ORDER BY day"
    for day, amount, count, refunded in world.issuer.store.execute(days):
        issuer.add_row(day, "day total", str(amount), str(count))
        if refunded:  # operators' refunds that day: the issuer pays them back to the cards
            issuer.add_row(day, "refunded", str(refunded), "-")
    console.print(issuer)

    school = Table(title="School knows: who holds which card (never sent anywhere)")
    school.add_column("student")
    school.add_column("card")
    school.add_column("profile")
    for name, card in sorted(scenario.cards.items()):
        school.add_row(name, card_ref(card.uid), card.profile)
    console.print(school)
