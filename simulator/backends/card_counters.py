"""The issuer's check of purse cards' transaction counters across every machine that settled them.

Each machine settles each step it made on a card (``steps`` of a period document): the card's
counter after the step, the amount, the balance after and the SAM's MAC. Per card, in counter order:

- a **repeat**: one counter settled twice with different contents (two machines, or one twice):
  a cloned or replayed card, or a machine that lies;
- a **gap** that money left through: counters ``n`` and ``m > n + 1`` with ``balance(n) -
  amount(m) > balance(m)``: the card lost more between them than the steps in between could have
  put back, so some debit was never settled. A gap the purse only rose through is a top-up at a store
  (the stores' top-ups settle elsewhere) and no incident; a missing debit smaller than a top-up in
  the same gap is hidden by it (docs/payments.md).

Consecutive counters must agree too: ``balance(n) - amount(n + 1) == balance(n + 1)``, or a step
was altered. A MAC that is not the SAM's is an incident when the issuer holds the card master key.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby, pairwise
from typing import Any

from firmware.cards.purse import Sam, step_mac


@dataclass(frozen=True)
class CounterIncident:
    uid: str
    kind: str  # repeat | gap | altered | mac
    counter: int
    detail: str


def incidents(steps: list[dict[str, Any]], sam: Sam | None = None) -> list[CounterIncident]:
    """Every incident in ``steps`` (dicts with uid, counter, amount, balance, mac, machine)."""
    found: list[CounterIncident] = []
    ordered = sorted(steps, key=lambda s: (s["uid"], s["counter"], s.get("machine", "")))
    for uid, group in groupby(ordered, key=lambda s: s["uid"]):
        card_steps = list(group)
        if sam is not None:
            found += [_bad_mac(uid, step) for step in card_steps if not _mac_ok(sam, uid, step)]
        unique: dict[int, dict[str, Any]] = {}
        for step in card_steps:
            seen = unique.setdefault(step["counter"], step)
            if _content(seen) != _content(step):
                detail = f"settled as {_content(seen)} and as {_content(step)}"
                found.append(CounterIncident(uid, "repeat", step["counter"], detail))
        for before, after in pairwise(sorted(unique.values(), key=lambda s: s["counter"])):
            expected = before["balance"] - after["amount"]
            if after["counter"] == before["counter"] + 1 and expected != after["balance"]:
                detail = (
                    f"#{before['counter']} left NT${before['balance']}, #{after['counter']} says NT${after['balance']}"
                )
                found.append(CounterIncident(uid, "altered", after["counter"], detail))
            elif after["counter"] > before["counter"] + 1 and expected > after["balance"]:
                missing = expected - after["balance"]
                span = f"#{before['counter'] + 1}..#{after['counter'] - 1}"
                found.append(CounterIncident(uid, "gap", after["counter"], f"NT${missing} left in unsettled {span}"))
    return found


def _content(step: dict[str, Any]) -> tuple[int, int]:
    return step["amount"], step["balance"]


def _mac_ok(sam: Sam, uid: str, step: dict[str, Any]) -> bool:
    return step_mac(sam, bytes.fromhex(uid), step["counter"], step["amount"], step["balance"]) == step["mac"]


def _bad_mac(uid: str, step: dict[str, Any]) -> CounterIncident:
    return CounterIncident(uid, "mac", step["counter"], "the MAC is not the SAM's: the step was not made by a machine")


@dataclass(frozen=True)
class UnresolvedDebit:
    """A step a machine left to the issuer, and what the other machines' steps say of it.

    A debit (``amount`` taken) or a refund's last try (``amount`` negative, as the card's log signs a
    credit). ``made``: the step is on the card; for a debit nothing was vended on it, so the card is
    owed the amount; for a refund the card has it. ``not_made``: the reverse.
    """

    uid: str
    machine: str
    txn: str
    counter: int
    amount: int
    verdict: str  # made | not_made | unknown

    @property
    def owed_to_card(self) -> int:
        """What the verdict leaves the card owed: a debit made with nothing vended, or a refund never made."""
        if self.verdict == "made" and self.amount > 0:
            return self.amount
        if self.verdict == "not_made" and self.amount < 0:
            return -self.amount
        return 0


def decide_unresolved(unresolved: list[dict[str, Any]], steps: list[dict[str, Any]]) -> list[UnresolvedDebit]:
    """Each left debit against the step settled at the next counter of its card (by any machine).

    That step's balance before it (its balance after plus its amount) is the balance the machine read
    less the amount when the debit was made, or the balance read when it was not; anything else (no
    step settled there yet, or a store's top-up there) leaves it ``unknown``.
    """
    settled = {(step["uid"], step["counter"]): step for step in steps}
    found = []
    for left in unresolved:
        following = settled.get((left["uid"], left["counter"] + 1))
        verdict = "unknown"
        if following is not None:
            before_next = following["balance"] + following["amount"]
            if before_next == left["before"] - left["amount"]:
                verdict = "made"
            elif before_next == left["before"]:
                verdict = "not_made"
        found.append(
            UnresolvedDebit(left["uid"], left["machine"], left["txn"], left["counter"], left["amount"], verdict)
        )
    return found
