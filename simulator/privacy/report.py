"""Run the attack over a term and render its figures; docs/privacy.md shows what ``bench/privacy.py`` measured.

The table between the markers in docs/privacy.md is ``table(figures)`` of the ``privacy`` entry of
bench/results.json, never typed by hand (tests/simulator/privacy/test_attack.py checks it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from firmware.config.machine import MachineConfig
from simulator.privacy.attack import alone_in_window, camera_matched, exact_minutes, pinned_by_day
from simulator.privacy.request_traffic import measure_requests
from simulator.privacy.term import DESIGNS, TermViews, simulated_term, views_of
from simulator.safe_output import replace_section

BEGIN = "<!-- simulator/privacy/report.py: begin -->"
END = "<!-- simulator/privacy/report.py: end -->"
SETTLEMENTS = ("per_card", "day_total")
REQUESTERS = 10  # students whose access requests the request attacker watches
ERASED = 3  # of them, who then ask for erasure
DESIGN_NAMES = {
    "visit": "per visit (the machine today; per_card lines per four-week period)",
    "visit-weekly": "per visit, issuer lines per card and week (the previous per_card, rebuilt)",
    "visit-daily": "per visit, issuer lines per card and day (the one before, rebuilt)",
    "day": "per card and day (rebuilt)",
    "term": "per card and term (the old design, rebuilt)",
}


def checkpoints(days: int) -> list[int]:
    return sorted({n for n in (1, 5, 20, 100) if n <= days} | {days})


def measure(
    days: int,
    students: int,
    seed: int,
    settlements: tuple[str, ...],
    designs: tuple[str, ...],
    requesters: int = REQUESTERS,
) -> dict[str, Any]:
    """Pinned cards after each checkpoint, for each settlement mode and pseudonym design; timing and requests.

    One simulated term per settlement mode; every design's view is read from it. ``timing`` is the
    machine's own design (``visit``) under the minute and camera attackers, ``requests`` what the
    school's rights requests show the vendor and the issuer (simulator/privacy/request_traffic.py).
    """
    runs = []
    timing: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    window = MachineConfig.model_fields["release_minutes"].default  # the fleet plan keeps the default
    for settlement in settlements:
        with simulated_term(days, students, seed, settlement) as term:
            for design in designs:
                if design in ("visit-daily", "visit-weekly") and settlement != "per_card":
                    continue  # only per_card ever had per-card lines per day or week
                views = views_of(term, design, settlement)
                if design == "visit" and not timing:
                    timing = _timing(views, window)
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
            if requesters:
                with tempfile.TemporaryDirectory(prefix="requests-") as tmp:
                    requests[settlement] = measure_requests(term, Path(tmp), requesters, ERASED)
    return {"days": days, "students": students, "seed": seed, "runs": runs, "timing": timing, "requests": requests}


def _timing(views: TermViews, window: int) -> dict[str, Any]:
    alone, sales = alone_in_window(views.sales)
    claimed, right = exact_minutes(views.sales, views.reports, window)
    matched = camera_matched(views.sales, views.reports, window)
    return {
        "sales": sales,
        "alone": alone,
        "minutes_claimed": claimed,
        "minutes_right": right,
        "camera_matched": matched,
        "release_minutes": window,
    }


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
    return "\n".join(lines) + "\n" + note + observed(figures) + "\n"


def observed(figures: dict[str, Any]) -> str:
    """What the timing and request attackers found, in sentences (the docs and `vending privacy attack`)."""
    note = ""
    timing = figures.get("timing") or {}
    if timing.get("sales"):
        note += (
            f"\n\nSomeone who also saw the visitors (a camera, a door log) and knows their order can match a "
            f"vendor record to its visitor only when it is alone in its release window: "
            f"{timing['alone'] / timing['sales']:.1%} of {timing['sales']} sales ({timing['alone']}) with "
            f"{timing['release_minutes']}-minute windows, against every sale when each goes out at once "
            f"with its minute and seq. Measured with every report the vendor gets: alerts and stock snapshots "
            f"give {timing['minutes_claimed']} sale(s) an exact minute ({timing['minutes_right']} right), and "
            f"the camera matches {timing['camera_matched']} ({timing['camera_matched'] / timing['sales']:.1%})."
        )
    for settlement, seen in sorted((figures.get("requests") or {}).items()):
        note += (
            f"\n\nRights requests (`{settlement}`): {seen['requesters']} card holders who bought asked for access and "
            f"{min(seen['requesters'], ERASED)} then for erasure. The vendor and the issuer together pinned "
            f"{seen['pinned']} requester(s) from the requests they received; the erasures named "
            f"{seen['named_in_erasures']} record(s), of which the vendor still held {seen['linked_beyond_erased']} "
            f"afterwards. Found {seen['sales_found']} of the {seen['sales_held']} sales the machine holds for those "
            f"cards, and {seen['refusals_found']} refusal(s). Each request read the whole term: "
            f"{seen['messages_per_request']} signed messages, {seen['bytes_per_request'] / 1e6:.2f} MB, "
            f"{seen['seconds_per_request']:.2f} s of the parties' and the school's work in process (each "
            "message pair adds one broker round trip on the wire)."
        )
    return note


def write(doc: Path, figures: dict[str, Any]) -> None:
    """The figures' table into ``doc`` between its markers (``VendingError`` naming ``doc`` without them)."""
    replace_section(doc, BEGIN, END, table(figures))
