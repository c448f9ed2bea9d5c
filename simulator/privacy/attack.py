"""The strongest vendor + issuer join we can write: how many cards their pooled records pin.

The vendor holds sale records (day, product, price, a buyer token or none); the issuer holds the
day's settlement (per card: amount and count; or, with ``day_total``, only which cards took part).
The attacker knows the design, so it knows how long a token lives (its *scope*):

- ``term``: one token per card for the whole term -- a token's candidates are intersected across
  every day it appears, and cards that bought on a day the token was absent are excluded;
- ``day``: one token per card and day -- its records are the card's whole day, so amounts must
  match exactly;
- ``visit``: one token per purchase -- a record must fit inside a card's day (amount and count).

Within a day, a card pinned to a token is eliminated from every other token's candidates once the
token(s) pinned to it account for all its purchases, repeated until nothing changes. A card counts
as **pinned** from the first day one of its tokens has it as the only candidate: the colluders then
hold at least one of that card's purchases under its name. Pure functions over the two views; the
views themselves come from the machine's own outbox (``simulator.privacy.term``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SCOPES = ("term", "day", "visit")


@dataclass(frozen=True)
class Sale:
    """One vended sale as the vendor holds it."""

    day: str
    price: int
    token: str | None  # a pseudonym, or None when the record carries none
    time: str = ""  # as the vendor got it: the release window's start (or the minute, sent at once)
    slot: str = ""
    minute: str = ""  # the tap's true local minute: never the vendor's, only to score the timing attack


@dataclass(frozen=True)
class Timed:
    """A report other than a visit, as the vendor got it: its time, and the slots it tells about."""

    time: str
    slots: frozenset[str]


@dataclass
class IssuerDay:
    """One machine-day's settlement as the issuer holds it."""

    cards: dict[str, tuple[int, int]] = field(default_factory=dict)  # uid -> (amount, count); per_card
    withheld: bool = False  # day_total: the card list without amounts (values are (0, 0))


@dataclass(frozen=True)
class Outcome:
    days: int
    buying_cards: int
    pinned_cards: int

    @property
    def share(self) -> float:
        return self.pinned_cards / self.buying_cards if self.buying_cards else 0.0


def _sums(prices: set[int], items: int, limit: int) -> set[int]:
    """Every amount ``items`` purchases at these prices can add up to (not above ``limit``)."""
    reachable = {0}
    for _ in range(items):
        reachable = {a + p for a in reachable for p in prices if a + p <= limit}
    return reachable


def _fits(records: Sequence[int], card: tuple[int, int], exact: bool, day_prices: set[int]) -> bool:
    """Could these records be (exact: be all of) this card's day? Rest decomposed into prices sold that day."""
    amount, count = card
    spent, bought = sum(records), len(records)
    if exact:
        return (spent, bought) == (amount, count)
    left = count - bought
    return left >= 0 and amount - spent in _sums(day_prices, left, amount - spent)


def _candidates(records: list[int], issuer: IssuerDay, exact: bool, day_prices: set[int]) -> set[str]:
    """Cards whose day could hold this token's records on this day."""
    if issuer.withheld:
        return set(issuer.cards)
    return {uid for uid, card in issuer.cards.items() if _fits(records, card, exact, day_prices)}


def attack(sales: Iterable[Sale], issuer: dict[str, IssuerDay], scope: str) -> set[str]:
    """The cards the pooled records pin (see the module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"scope: expected one of {SCOPES}, got {scope!r}")
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    day_prices: dict[str, set[int]] = defaultdict(set)
    for index, sale in enumerate(sales):
        token = sale.token if scope != "visit" and sale.token is not None else f"#{index}"
        groups[(token, sale.day)].append(sale.price)
        day_prices[sale.day].add(sale.price)
    exact = scope != "visit"
    candidates: dict[tuple[str, str], set[str]] = {}
    for (token, day), records in groups.items():
        candidates[(token, day)] = _candidates(records, issuer.get(day, IssuerDay()), exact, day_prices[day])
    if scope == "visit":
        _single_purchase_counting(candidates, groups, issuer)
    if scope == "term":
        candidates = _across_days(candidates, issuer)
    return _eliminate(candidates, groups, issuer, scope)


def _single_purchase_counting(
    candidates: dict[tuple[str, str], set[str]], groups: dict[tuple[str, str], list[int]], issuer: dict[str, IssuerDay]
) -> None:
    """Cards that bought once at price p own one price-p record each; if that is all of them, only they do."""
    records: dict[tuple[str, int], list[tuple[str, str]]] = defaultdict(list)
    for key, prices in groups.items():
        records[(key[1], prices[0])].append(key)
    for (day, price), keys in records.items():
        settled = issuer.get(day, IssuerDay())
        if settled.withheld:
            continue
        singles = {uid for uid, (amount, count) in settled.cards.items() if (amount, count) == (price, 1)}
        if singles and len(singles) == len(keys):
            for key in keys:
                candidates[key] &= singles


def _across_days(candidates: dict[tuple[str, str], set[str]], issuer: dict[str, IssuerDay]) -> dict:
    """A term token is one card: intersect its days, and drop cards that bought when it was absent."""
    days_of: dict[str, set[str]] = defaultdict(set)
    for token, day in candidates:
        days_of[token].add(day)
    merged: dict[str, set[str]] = {}
    for (token, _day), cards in candidates.items():
        merged[token] = merged[token] & cards if token in merged else set(cards)
    for token, present in days_of.items():
        for day, settled in issuer.items():
            if day not in present:
                merged[token] -= set(settled.cards)
    return {(token, day): merged[token] for token, day in candidates}


def _eliminate(
    candidates: dict[tuple[str, str], set[str]],
    groups: dict[tuple[str, str], list[int]],
    issuer: dict[str, IssuerDay],
    scope: str,
) -> set[str]:
    """Cards fully accounted for by pinned tokens leave every other token's candidates; to a fixpoint."""
    pinned: set[str] = set()
    changed = True
    while changed:
        changed = False
        used: dict[tuple[str, str], int] = defaultdict(int)  # (day, card) -> purchases explained by pins
        for (token, day), cards in candidates.items():
            if len(cards) == 1:
                (card,) = cards
                pinned.add(card)
                used[(day, card)] += len(groups[(token, day)])
        for (_token, day), cards in candidates.items():
            if len(cards) <= 1:
                continue
            settled = issuer.get(day, IssuerDay())
            full = {card for card in cards if used.get((day, card), 0) >= _capacity(settled, card, scope)}
            if scope == "term":  # a pinned term token is its card on every day
                full |= {card for card in cards if any((d, card) in used for d in issuer)}
            if full and full != cards:
                cards -= full
                changed = True
    return pinned


def _capacity(settled: IssuerDay, card: str, scope: str) -> float:
    """How many pinned records account for a card's whole day: one token, or its count of purchases."""
    if scope != "visit":
        return 1
    return float("inf") if settled.withheld else settled.cards[card][1]


def pinned_by_day(
    sales: Sequence[Sale],
    issuer: dict[str, IssuerDay],
    covered: dict[str, list[str]],
    scope: str,
    checkpoints: Sequence[int],
) -> list[Outcome]:
    """The attack on the first N school days of the term, for each N in ``checkpoints``.

    ``issuer`` is keyed by settlement period and ``covered`` says which school days each period
    settles (one day, a week, or four): a period counts once all its days are in the window, and a
    sale is then joined under its period, as the colluders would.
    """
    days = sorted({s.day for s in sales} | {d for period in covered.values() for d in period})
    outcomes = []
    for n in checkpoints:
        window = set(days[:n])
        settled = {p: issuer[p] for p, its_days in covered.items() if p in issuer and set(its_days) <= window}
        period_of = {d: p for p in settled for d in covered[p]}
        seen = [Sale(period_of.get(s.day, s.day), s.price, s.token) for s in sales if s.day in window]
        buyers = set().union(*(set(s.cards) for s in settled.values())) if settled else set()
        outcomes.append(Outcome(n, len(buyers), len(attack(seen, settled, scope))))
    return outcomes


def alone_in_window(sales: Sequence[Sale]) -> tuple[int, int]:
    """(sales alone in their release window, all sales): what someone who saw the visitors can match.

    A camera or a door log gives the order of the visitors; the vendor's records of one window are
    shuffled and carry the window's time, so only a sale alone in its window is matched to its visitor.
    """
    sizes: dict[str, int] = defaultdict(int)
    for sale in sales:
        sizes[sale.time] += 1
    return sum(1 for sale in sales if sizes[sale.time] == 1), len(sales)


def minute_claims(sales: Sequence[Sale], reports: Sequence[Timed], window_minutes: int) -> list[tuple[Sale, str]]:
    """(sale, the minute claimed for it): what the vendor reads off reports other than the sale itself.

    Where a slot sold once in a window, a report about that slot (an alert, a snapshot showing it
    sold) timed inside the window but not at its start gives the sale's minute. A report timed to
    the window's start says only what the sale's own time says.
    """
    if window_minutes <= 0:
        return []  # each sale carries its own minute already: nothing to recover
    sold: dict[tuple[str, str], int] = defaultdict(int)
    for sale in sales:
        sold[(sale.time, sale.slot)] += 1
    claims = []
    for sale in sales:
        if sold[(sale.time, sale.slot)] != 1:
            continue
        start = datetime.fromisoformat(sale.time)
        end = start + timedelta(minutes=window_minutes)
        inside = {r.time for r in reports if sale.slot in r.slots and start < datetime.fromisoformat(r.time) < end}
        if len(inside) == 1:
            claims.append((sale, inside.pop()))
    return claims


def exact_minutes(sales: Sequence[Sale], reports: Sequence[Timed], window_minutes: int) -> tuple[int, int]:
    """(claimed, right): sales given a minute by another report, and how many of those minutes are true."""
    claims = minute_claims(sales, reports, window_minutes)
    return len(claims), sum(1 for sale, minute in claims if minute == sale.minute)


def camera_matched(sales: Sequence[Sale], reports: Sequence[Timed], window_minutes: int) -> int:
    """Sales someone who saw the visitors matches to one record: alone in their window, or timed by a report.

    A camera or door log knows each visitor's minute; a record matches one visitor when nothing else
    in its window could be it, or when another report gives its true minute and no other visitor of
    the window came in that minute.
    """
    sizes: dict[str, int] = defaultdict(int)
    in_minute: dict[str, int] = defaultdict(int)
    for sale in sales:
        sizes[sale.time] += 1
        in_minute[sale.minute] += 1
    timed = {id(sale) for sale, minute in minute_claims(sales, reports, window_minutes) if minute == sale.minute}
    return sum(1 for sale in sales if sizes[sale.time] == 1 or (id(sale) in timed and in_minute[sale.minute] == 1))
