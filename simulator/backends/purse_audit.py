"""What the issuer's database says of purse cards: counter incidents, and the steps machines left to it.

Read by the running backend (``IssuerBackend``) and by an auditor's ``vending backend issuer purses``
alike, from the same tables: ``card_steps`` (each step a machine settled with its period),
``card_unresolved`` (steps a machine could not settle itself), ``card_unresolved_decided`` (the
verdicts the issuer acted on, with what it listed for the card) and ``card_unresolved_reviewed`` (why a
reviewer gave a verdict the counters could not). The decisions themselves are
``card_counters``'s; this module only reads them out of the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from firmware.cards.purse import Sam
from simulator.backends.card_counters import CounterIncident, UnresolvedDebit, decide_unresolved, incidents
from simulator.backends.store import SqliteReportStore

LEFT = ("machine", "txn", "uid", "counter", "amount", "before", "day")
FOLLOWING = ("uid", "counter", "amount", "balance")
SETTLED = ("uid", "counter", "machine", "amount", "balance", "mac")
UNDECIDED = " WHERE NOT EXISTS (SELECT 1 FROM card_unresolved_decided d WHERE d.machine = u.machine AND d.txn = u.txn)"


@dataclass(frozen=True)
class LeftStep:
    """An unresolved step as the audit shows it: the verdict now, and what the issuer listed for it."""

    step: UnresolvedDebit  # its verdict a reviewer's where one gave it
    day: str
    listed: int | None  # the credit listed when the issuer acted on the verdict; None: not acted on yet
    reviewed: str | None = None  # the reviewer's reason, where the counters could not decide it


def _rows(store: SqliteReportStore, keys: tuple[str, ...], sql: str) -> list[dict[str, Any]]:
    return [dict(zip(keys, row, strict=True)) for row in store.execute(sql)]


def left_steps(store: SqliteReportStore, *, undecided_only: bool = False) -> list[tuple[UnresolvedDebit, str]]:
    """Each step machines left unresolved, decided against the step that follows it on its card; with its day.

    Only the steps that follow those read are read (the primary key finds each), never all of ``card_steps``.
    """
    where = UNDECIDED if undecided_only else ""
    left = _rows(store, LEFT, f"SELECT {', '.join(LEFT)} FROM card_unresolved u{where} ORDER BY day, machine, txn")
    if not left:
        return []
    following = _rows(
        store,
        FOLLOWING,
        "SELECT DISTINCT s.uid, s.counter, s.amount, s.balance FROM card_steps s "
        f"JOIN card_unresolved u ON s.uid = u.uid AND s.counter = u.counter + 1{where}",
    )
    days = [str(row["day"]) for row in left]
    return list(zip(decide_unresolved(left, following), days, strict=True))


def undecided(store: SqliteReportStore) -> int:
    """Steps left to the issuer that it has not decided yet: whether their money is on the card, nobody can tell."""
    return int(store.execute(f"SELECT COUNT(*) FROM card_unresolved u{UNDECIDED}")[0][0])


def counter_incidents(store: SqliteReportStore, sam: Sam | None = None) -> list[CounterIncident]:
    """Purse cards' counters checked across every machine that settled them (``card_counters.incidents``)."""
    return incidents(_rows(store, SETTLED, f"SELECT {', '.join(SETTLED)} FROM card_steps"), sam)


def audit(store: SqliteReportStore) -> list[LeftStep]:
    """Every unresolved step with its verdict and, once the issuer acted on it, what it listed for the card."""
    decided = store.execute(
        "SELECT d.machine, d.txn, d.verdict, d.owed, r.reason FROM card_unresolved_decided d "
        "LEFT JOIN card_unresolved_reviewed r ON r.machine = d.machine AND r.txn = d.txn"
    )
    acted = {(str(m), str(t)): (str(verdict), int(owed), reason) for m, t, verdict, owed, reason in decided}
    found = []
    for step, day in left_steps(store):
        verdict, owed, reason = acted.get((step.machine, step.txn), (step.verdict, None, None))
        found.append(LeftStep(replace(step, verdict=verdict), day, owed, reason))
    return found


def find(store: SqliteReportStore, machine: str, txn: str) -> LeftStep | None:
    """The step ``machine`` left as ``txn``, as the audit shows it; None if it left none."""
    return next((one for one in audit(store) if (one.step.machine, one.step.txn) == (machine, txn)), None)
