"""Named places where a power cut is most interesting: around every durable step.

``VENDING_CRASH_TRACE=<file>`` appends every point reached to a file.
``VENDING_CRASH_AT=<point>[:<nth>]`` makes the process die at the nth arrival at that point with
``os._exit`` (no clean-up, no flush), as a power cut would. In-process tests install a hook instead
(the scenario runner's ``power: {cut_at: ...}`` raises :class:`PowerCut`). Every point is declared
here so the crash harness can enumerate them, and a test fails if code reaches an undeclared one.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable

CRASH_EXIT_CODE = 86

POINTS: dict[str, str] = {
    "journal.before_commit": "journal rows written, transaction not yet committed",
    "journal.after_commit": "journal transaction committed, caller not yet told",
    "intent.before_commit": "a debit of the purse on the card journaled (with its counter), not committed",
    "intent.after_commit": "the debit's intent committed, nothing written to the card yet",
    "card.after_write": "one write-class command (WRITE, TRANSFER) carried out by the card in the field",
    "card_step.before_commit": "a card step resolved or a refund's attempt journaled, not committed",
    "card_step.after_commit": "a card step resolved or a refund's attempt committed",
    "debit.before_commit": "card debited and vend journaled, not committed",
    "debit.after_commit": "debit committed, motor not started",
    "dispense.after_motor": "motor ran and drop sensor read, result not journaled",
    "drop.before_commit": "drop, stock and takings written, not committed",
    "drop.after_commit": "drop committed, session not closed",
    "refund.before_commit": "refund written, not committed",
    "refund.after_commit": "refund committed, session not closed",
    "stock.before_commit": "stock change written, not committed",
    "stock.after_commit": "stock change committed",
    "outbox.insert": "outbox row inserted inside the journal transaction",
    "outbox.release": "held reports numbered into the outbox, not committed",
    "publish.before": "outbox row read, not yet handed to the MQTT client",
    "publish.batch": "several reports composed and signed as one batch, not yet handed to the MQTT client",
    "publish.after": "broker acknowledged the publish (PUBACK), no application ack yet",
    "ack.received": "application ack received, outbox rows not yet deleted",
    "outbox.delete.after_commit": "acknowledged outbox rows deleted and committed",
    "backend.batch.verified": "backend checked a batch's signature and every digest in it, nothing stored",
    "backend.insert.before_commit": "backend wrote the report, not committed",
    "backend.insert.after_commit": "backend committed the report, ack not sent",
    "backend.ack.after": "backend published its ack",
}


class PowerCut(BaseException):
    """Raised by an in-process hook: unwinds like a crash, skipping ``except Exception`` clean-ups."""


class UndeclaredCrashPoint(AssertionError):
    """Code reached a crash point that ``POINTS`` does not list."""


Hook = Callable[[str], None]
_hook: Hook | None = None
_hits: Counter[str] = Counter()


def set_hook(hook: Hook | None) -> None:
    global _hook
    _hook = hook


@functools.cache
def _armed() -> tuple[str | None, tuple[str, int] | None]:
    """Read the environment once per process: it is set before a harness starts the process."""
    trace = os.environ.get("VENDING_CRASH_TRACE") or None
    raw = os.environ.get("VENDING_CRASH_AT")
    if not raw:
        return trace, None
    name, _, nth = raw.partition(":")
    return trace, (name, int(nth) if nth else 1)


def reached(point: str) -> None:
    """Mark arrival at ``point``; die or call the hook if a crash is armed there."""
    if point not in POINTS:
        raise UndeclaredCrashPoint(point)
    _hits[point] += 1
    trace, target = _armed()
    if trace:  # the harness learns which points a run reaches, and how often
        with open(trace, "a") as handle:
            handle.write(point + "\n")
    if target is not None and target[0] == point and _hits[point] == target[1]:
        os._exit(CRASH_EXIT_CODE)
    if _hook is not None:
        _hook(point)
