"""The school-day arrival model and the generated machines (documented in docs/scaling.md).

Machines and cards are drawn from ``random.Random(f"{seed}:{machine}")`` and each day's visits from
``random.Random(f"{seed}:{machine}:{day}")``, so the same seed gives the same machines, the same
cards and the same taps, whatever the number of worker processes, and a term of days keeps its
student population.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from firmware.config.catalog import Catalog
from firmware.config.rules import RuleSet, load_rulesets
from firmware.domain import SCHOOL_LEVELS, SchoolLevel
from firmware.policy.rules.engine import evaluate

ZONE = ZoneInfo("Asia/Taipei")
LEVELS: tuple[SchoolLevel, ...] = SCHOOL_LEVELS
FLEET_RULES = ("tw-moe-2016", "tpe-no-bottled-water")  # every fleet machine is a Taipei school's
Stockable = dict[str, list[str]]  # school level -> product ids its food rules allow
SLOT_CODES = [f"{row}{col}" for row in "ABCDE" for col in (1, 2, 3)]

# (name, start, end, share of a student's purchases)
WINDOWS = (
    ("before class", time(7, 20), time(7, 55), 0.25),
    ("morning recess", time(10, 0), time(10, 15), 0.20),
    ("lunch", time(12, 0), time(12, 40), 0.30),
    ("after school", time(16, 0), time(17, 0), 0.25),
)
STUDENT_PURCHASES_PER_DAY = 0.35  # Poisson mean
STAFF_PER_STUDENT = 1 / 15
STAFF_PURCHASES_PER_DAY = 0.6  # spread over 07:30-17:00
LOW_BALANCE_SHARE = 0.08  # cards that will hit insufficient funds
UNKNOWN_CARD_SHARE = 0.01  # taps by cards the machine does not know
JAM_SHARE = 0.005  # vends whose spiral jams
# account mode: how long a machine waits for the issuer before approving offline. A deployment's
# 300 ms default assumes an issuer on its own servers; the fleet's issuer shares this box with every
# machine of the run (and, in the test suite, with every other test), so any short wait measures the
# box's load, not the design: 2 s once fell short under a loaded CI run. The most a machine's config
# allows: an offline approval in a fleet then means an answer that never came.
ISSUER_TIMEOUT_MS = 10_000
WALK_AWAY_SHARE = 0.02  # select, then leave (selection timeout)
CARD_FIRST_SHARE = 0.5  # tap before selecting (MDB session first)
RESTOCK_AT = time(13, 30)  # the route driver refills every slot once a day
CAPACITIES = (10, 12, 15)
SNACK_LOCKOUT = {"profiles": ["student"], "categories": ["snack"], "from": "11:00", "to": "13:00"}


@dataclass(frozen=True)
class Card:
    uid: str
    profile: str
    balance: int


@dataclass(frozen=True)
class Visit:
    """One person at the machine: what they do, in order, at a virtual instant."""

    at: datetime
    uid: str
    slot: str
    card_first: bool
    walks_away: bool
    jams: bool


@dataclass(frozen=True)
class MachinePlan:
    machine_id: str
    day: date
    config: dict
    cards: list[Card]
    visits: list[Visit]
    school: int = 0  # the machines of one school share its students (and, with purse cards, the cards)


def fleet_machine_id(index: int) -> str:
    return f"TPE-FLEET-{index:04d}"


def school_of(index: int, per_school: int) -> int:
    return index // per_school


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _uid(rng: random.Random) -> str:
    return "04" + "".join(f"{rng.randrange(256):02X}" for _ in range(6))


def _student_balance(rng: random.Random) -> int:
    return rng.randint(0, 20) if rng.random() < LOW_BALANCE_SHARE else rng.randint(100, 500)


def _at(day: date, start: time, end: time, rng: random.Random) -> datetime:
    begin = datetime.combine(day, start, tzinfo=ZONE)
    span = (datetime.combine(day, end, tzinfo=ZONE) - begin).total_seconds()
    return begin + timedelta(seconds=int(rng.random() * span))


@cache
def fleet_rulesets() -> tuple[RuleSet, ...]:
    """The food rules every fleet machine carries (``rules:`` in its config), loaded once per process."""
    return tuple(load_rulesets(list(FLEET_RULES)))


def stockable(catalog: Catalog) -> Stockable:
    """Per school level, the catalog's products that level's food rules allow: what a route driver loads."""
    rulesets = fleet_rulesets()
    products = catalog.products.items()
    return {
        level: sorted(pid for pid, product in products if evaluate(pid, product, level, rulesets).allowed)
        for level in LEVELS
    }


def plan_machine(
    index: int,
    day: date,
    students: int,
    seed: int,
    products: Stockable,
    payment: str = "machine_wallet",
    per_school: int = 1,
) -> MachinePlan:
    """One machine: its config (level, food rules, planogram, stock), its cards and its day of visits.

    With ``per_school`` machines a school, they share the school's level and students, and each
    student spreads the day's purchases over them; one machine a school draws as it always has.
    """
    rng = random.Random(f"{seed}:{index}")
    school = school_of(index, per_school)
    school_rng = rng if per_school == 1 else random.Random(f"{seed}:school:{school}")
    machine_id = fleet_machine_id(index)
    level = school_rng.choice(LEVELS)
    allowed = products[level]
    chosen = rng.sample(allowed, k=min(len(SLOT_CODES), len(allowed)))
    slots = {}
    for code, product in zip(SLOT_CODES, chosen, strict=False):
        capacity = rng.choice(CAPACITIES)
        slots[code] = {"product": product, "capacity": capacity, "stock": rng.randint(capacity // 2, capacity)}
    config = {
        "id": machine_id,
        "school": {"code": f"{300000 + school}", "level": level},
        "timezone": "Asia/Taipei",
        "currency": "TWD",
        "catalog": "campus.yaml",
        "rules": list(FLEET_RULES),
        "lockouts": [SNACK_LOCKOUT],
        "slots": slots,
        "payment": {"mode": payment, **({"timeout_ms": ISSUER_TIMEOUT_MS} if payment == "account" else {})},
    }
    low = LOW_BALANCE_SHARE
    cards = [
        Card(
            _uid(school_rng),
            "student",
            school_rng.randint(0, 20) if school_rng.random() < low else school_rng.randint(100, 500),
        )
        for _ in range(students)
    ]
    cards += [
        Card(_uid(school_rng), "staff", school_rng.randint(200, 1000))
        for _ in range(max(1, round(students * STAFF_PER_STUDENT)))
    ]
    rng = random.Random(f"{seed}:{index}:{day.isoformat()}")  # the same cards every day, a new day of visits
    visits = []
    codes = list(slots)
    weights = [w for *_, w in WINDOWS]
    for card in cards:
        student = card.profile == "student"
        mean = (STUDENT_PURCHASES_PER_DAY if student else STAFF_PURCHASES_PER_DAY) / per_school
        for _ in range(_poisson(rng, mean)):
            if student:
                _, start, end, _ = rng.choices(WINDOWS, weights)[0]
            else:
                start, end = time(7, 30), time(17, 0)
            uid = _uid(rng) if rng.random() < UNKNOWN_CARD_SHARE else card.uid
            visits.append(
                Visit(
                    _at(day, start, end, rng),
                    uid,
                    rng.choice(codes),
                    rng.random() < CARD_FIRST_SHARE,
                    rng.random() < WALK_AWAY_SHARE,
                    rng.random() < JAM_SHARE,
                )
            )
    visits.sort(key=lambda v: (v.at, v.uid))
    return MachinePlan(machine_id, day, config, cards, visits, school)


def school_days(count: int, first: date) -> list[date]:
    """``count`` consecutive school days (Mon-Fri) from ``first`` (skipped forward if a weekend)."""
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days
