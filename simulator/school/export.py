"""An access request's answer as files a student can keep and a person can read.

``access.json`` (documented by docs/access-export.schema.json), ``access.csv`` (one row per record,
for a spreadsheet) and ``summary.md`` (every field in plain words). Follows the portability idea
of the Data Transfer Project: a documented, machine-readable format the student can take
elsewhere, plus a summary a person can read without the schema.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware.errors import VendingError
from firmware.identity.secretfile import private_dir
from simulator.safe_output import all_or_nothing, occupied, write_csv
from simulator.school.subject import SubjectRecords

FORMAT = "campus-vending-access/1"
CSV_COLUMNS = ("held_by", "kind", "machine", "time", "product", "slot", "price", "outcome", "reason", "pseudonym")
FIELDS = {
    "held_by": "which party holds the record: vendor (what was bought or refused) or issuer (money per day)",
    "kind": "sale (a purchase, vended or refunded), denial (a refused visit), settlement_day (the issuer knows "
    "the card bought that day, not how much) or settlement_week (the card's total over a four-week period)",
    "machine": "the vending machine's id",
    "time": "local time to the minute (sale, denial), the day (settlement_day) or the period's first ISO week "
    "(settlement_week)",
    "product": "the product's catalog id",
    "slot": "the machine slot it was in",
    "price": "price in TWD; for a settlement_week, the card's total over that period",
    "outcome": "vended, or refunded when the product did not drop (the money went back)",
    "reason": "why a visit was refused (for example lunchtime lockout or campus food rules)",
    "pseudonym": "the name the vendor saw for this visit: every visit has its own; only the school can tie it to you",
}


def document(found: SubjectRecords, generated: datetime) -> dict[str, Any]:
    """The JSON the schema describes."""
    student = found.student
    vendor = [
        {"machine": r["machine"], "seq": r["seq"], "kind": r["kind"], **_visit(r["payload"])}
        for r in sorted(found.records, key=lambda r: (r["payload"].get("time", ""), r["machine"], r["seq"]))
    ]
    return {
        "format": FORMAT,
        "generated": generated.isoformat(timespec="seconds"),
        "student": student.student,
        "term": found.term,
        "school": {
            "card_uid": student.card_uid,
            "profile": student.profile,
            "guardian": {"linked": student.linked, "daily_limit": student.daily_limit},
        },
        "vendor": vendor,
        "issuer": {
            "days": [{"machine": d["machine"], "day": d["day"]} for d in found.settlements.get("days", [])],
            "weeks": [
                {key: w[key] for key in ("machine", "week", "days", "amount", "count")}
                for w in found.settlements.get("weeks", [])
            ],
        },
        "asked": [{"machine": machine, "day": day} for machine, day in found.asked],
    }


def _visit(payload: dict[str, Any]) -> dict[str, Any]:
    keep = ("time", "product", "slot", "price", "currency", "outcome", "reason", "pseudonym", "txn")
    return {key: payload[key] for key in keep if payload.get(key) is not None}


def unfit_for_export(out: Path) -> str | None:
    """Why ``out`` cannot take a student's export (it must be new or empty: it will hold one person's data)."""
    if (why := occupied(out)) == "holds files":
        return "holds files already (another export, perhaps another student's): give a new or empty directory"
    return why


def write_export(found: SubjectRecords, out: Path, generated: datetime) -> dict[str, Any]:
    """The three files in ``out``, new or empty (made 0700: it holds one person's data), all or none of them.

    It was chmod-ed 0700 whatever it was (``--out .``, a home directory), and its files were written over
    another export's and through symlinks; half a second export left one student's CSV beside another's JSON.
    """
    if (unfit := unfit_for_export(out)) is not None:
        raise VendingError(f"{out}: {unfit}; nothing written")
    private_dir(out)
    body = document(found, generated)
    rows = [{"held_by": "vendor", **record} for record in body["vendor"]]
    rows += [{"held_by": "issuer", "kind": "settlement_day", "machine": day["machine"], "time": day["day"]}
             for day in body["issuer"]["days"]]  # fmt: skip
    rows += [{"held_by": "issuer", "kind": "settlement_week", "machine": week["machine"], "time": week["week"],
              "price": week["amount"]} for week in body["issuer"]["weeks"]]  # fmt: skip
    table = io.StringIO(newline="")  # every cell made safe to open, the week's rows too (they were written raw)
    write_csv(table, CSV_COLUMNS, ([row.get(column, "") for column in CSV_COLUMNS] for row in rows))
    with all_or_nothing(out) as write:
        write("access.json", json.dumps(body, indent=2, ensure_ascii=False) + "\n", replace=False, mode=0o600)
        write("access.csv", table.getvalue(), replace=False, mode=0o600)
        write("summary.md", summary(body), replace=False, mode=0o600)
    return body


def summary(body: dict[str, Any]) -> str:
    """The human-readable part: what is in the files, what each field means, and the totals."""
    sales = [r for r in body["vendor"] if r["kind"] == "sale"]
    spent = sum(r.get("price", 0) for r in sales if r.get("outcome") == "vended")
    lines = [
        f"# Your campus vending records / 您的校園販賣機紀錄 — {body['student']}, term {body['term']}",
        "",
        f"Generated {body['generated']} by the school, the only party that knows who you are.",
        "",
        f"- The vendor holds {len(sales)} purchase(s) ({spent} TWD vended) and "
        f"{len(body['vendor']) - len(sales)} refused visit(s) under pseudonyms only the school can tie to you.",
        f"- The card issuer holds {len(body['issuer']['days'])} day(s) and {len(body['issuer']['weeks'])} week(s)"
        " of settlement for your card.",
        f"- The school read {len(body['asked'])} machine-day(s) of the vendor's records in full and found yours"
        " in them itself: the vendor was not told whom the request was for.",
        "",
        "The vendor never received your name or card number; the issuer never received what you bought.",
        "To have the vendor's records erased, ask the school (`vending school erase`).",
        "",
        "## Fields (access.csv, and the same names in access.json)",
        "",
        *[f"- `{name}`: {meaning}" for name, meaning in FIELDS.items()],
        "",
        "access.json is described by a JSON Schema: docs/access-export.schema.json.",
        "",
    ]
    return "\n".join(lines)
