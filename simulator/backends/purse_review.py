"""A reviewer's verdict on a purse step the card's counters cannot decide.

A machine leaves the issuer a step whose fate only the card shows (``unresolved``); the issuer decides it
against the next step another machine settled on the card (``card_counters.decide_unresolved``). When
that step is a store's top-up, which no machine settles, the verdict stays ``unknown`` for good and the
money waits. The issuer's staff then look at the card's full record (the top-up network's, which this
system does not hold) and decide: the step was made or it was not. What that leaves the card owed goes
on the credits list, once, exactly as a verdict of the counters does; the order is kept signed by the
issuer's key, as its account orders are, so a verdict nobody with the key gave shows.

Only an ``unknown`` step takes a review: one the counters decide is the backend's to act on, and a step
decided before, by either, is never decided again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from firmware.errors import VendingError
from firmware.reporting.signed import canonical, sign_text
from simulator.backends import purse_audit
from simulator.backends.credits import PendingCredits, Review
from simulator.backends.purse_audit import LeftStep
from simulator.backends.signer import ForeignSigner, pin


class ReviewRefused(VendingError):
    """The verdict was not recorded; the message names the step and why."""


def review(credits: PendingCredits, machine: str, txn: str, made: bool, reason: str, now: datetime) -> LeftStep:
    """Record the reviewer's verdict on ``machine``'s step ``txn`` and list what it leaves the card owed.

    Returns the step as the audit now shows it. ``ReviewRefused`` (nothing recorded) for a step nobody
    left, one decided before, one the counters decide, or a verdict without a reason.
    """
    store = credits.store
    named = f"--machine {machine} --txn {txn}"
    if not reason.strip():
        raise ReviewRefused(f"{named}: --reason is empty: say what the verdict rests on (it is kept for audit)")
    found = purse_audit.find(store, machine, txn)
    if found is None:
        raise ReviewRefused(f"{named}: no such step left to the issuer (`vending backend issuer purses` lists them)")
    if found.listed is not None:
        raise ReviewRefused(f"{named}: decided already ({found.step.verdict}, NT${found.listed} listed for the card)")
    if found.step.verdict != "unknown":
        raise ReviewRefused(
            f"{named}: the card's counters decide it ({found.step.verdict}); the issuer's backend acts on that"
        )
    try:  # last of the checks, so a refused verdict leaves even a fresh database as it was
        pin(store, credits.identity)  # the verdict is kept signed: by the issuer's key, or not at all
    except ForeignSigner as exc:
        raise ReviewRefused(str(exc)) from None
    verdict = replace(found.step, verdict="made" if made else "not_made")
    at, why = now.isoformat(timespec="seconds"), reason.strip()
    order = {"order": "verdict", "machine": machine, "txn": txn, "verdict": verdict.verdict,
             "owed": verdict.owed_to_card, "reason": why, "at": at}  # fmt: skip
    credits.owe_decided([(verdict, found.day)], Review(why, at, sign_text(credits.identity, canonical(order))))
    recorded = purse_audit.find(store, machine, txn)
    if recorded is None or recorded.reviewed is None:  # the backend decided it between our read and our write
        raise ReviewRefused(f"{named}: decided meanwhile by the issuer's backend; see `vending backend issuer purses`")
    return recorded
