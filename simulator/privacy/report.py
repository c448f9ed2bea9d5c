"""Run the attack over a term and render its figures; docs/privacy.md shows what ``bench/privacy.py`` measured.

The table between the markers in docs/privacy.md is ``table(figures)`` of the ``privacy`` entry of
bench/results.json, never typed by hand (tests/simulator/privacy/test_attack.py checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware.config.machine import MachineConfig
from simulator.privacy.attack import alone_in_window, pinned_by_day
from simulator.privacy.term import DESIGNS, term_views

BEGIN = "<!-- simulator/privacy/report.py: begin -->"
END = "<!-- simulator/privacy/report.py: end -->"
SETTLEMENTS = ("per_card", "day_total")
DESIGN_NAMES = {
    "visit": "per visit (the machine today)",
    "visit-daily": "per visit, issuer lines per card and day (the previous per_card, rebuilt)",
    "day": "per card and day (rebuilt)",
    "term": "per card and term (the old design, rebuilt)",
}


def checkpoints(days: int) -> list[int]:
    return sorted({n for n in (1, 5, 20, 100) if n <= days} | {days})


def measure(
    days: int, students: int, seed: int, settlements: tuple[str, ...], designs: tuple[str, ...]
) -> dict[str, Any]:
    """Pinned cards after each checkpoint, for each settlement mode and pseudonym design."""
    runs = []
    camera: dict[str, int] = {}
    for settlement in settlements:
        for design in designs:
            if design == "visit-daily" and settlement != "per_card":
                continue  # only per_card ever had per-card lines per day
            views = term_views(days, students, seed, settlement, design)
            if design == "visit" and not camera:
                alone, sales = alone_in_window(views.sales)
                window = MachineConfig.model_fields["release_minutes"].default  # the fleet plan keeps the default
                camera = {"alone": alone, "sales": sales, "release_minutes": window}
            outcomes = pinned_by_day(views.sales, views.issuer, views.covered, DESIGNS[design], checkpoints(days))
            runs.append(
                {
                    "settlement": settlement,
                    "design": design,
                    "sales": len(views.sales),
                    "after": [
                        {"days": o.days, "buying_cards": o.buying_cards, "pinned": o.pinned_cards, "share": o.share}
                        for o in outcomes
                    ],
                }
            )
    return {"days": days, "students": students, "seed": seed, "runs": runs, "camera": camera}


def cell(after: dict[str, Any]) -> str:
    """One checkpoint as the tables show it: share (pinned/buying cards)."""
    if after["buying_cards"] == 0:
        return "none settled yet"
    return f"{after['share']:.1%} ({after['pinned']}/{after['buying_cards']})"


def table(figures: dict[str, Any]) -> str:
    """The Markdown table docs/privacy.md shows."""
    marks = [entry["days"] for entry in figures["runs"][0]["after"]]
    head = "| settlement | vendor pseudonyms | " + " | ".join(f"after {n} day{'s' * (n > 1)}" for n in marks) + " |"
    lines = [head, "|---|---|" + "---:|" * len(marks)]
    for run in figures["runs"]:
        cells = [cell(after) for after in run["after"]]
        lines.append(f"| `{run['settlement']}` | {DESIGN_NAMES[run['design']]} | " + " | ".join(cells) + " |")
    note = (
        f"\n{figures['students']} students (plus staff) at one machine, seed {figures['seed']}, "
        f"{figures['days']} school days; cell = share of the cards that bought so far that are pinned "
        "(pinned / buying cards)."
    )
    camera = figures.get("camera") or {}
    if camera.get("sales"):
        note += (
            f"\n\nSomeone who also saw the visitors (a camera, a door log) and knows their order can match a "
            f"vendor record to its visitor only when it is alone in its release window: "
            f"{camera['alone'] / camera['sales']:.1%} of {camera['sales']} sales ({camera['alone']}) with "
            f"{camera['release_minutes']}-minute windows, against every sale when each goes out at once "
            "with its minute and seq."
        )
    return "\n".join(lines) + "\n" + note + "\n"


def write(doc: Path, figures: dict[str, Any]) -> None:
    text = doc.read_text()
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    doc.write_text(f"{before}{BEGIN}\n{table(figures)}{END}{after}")
