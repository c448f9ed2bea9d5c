"""Runs N machines' school days across P worker processes against one broker and the backends."""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import shutil
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Any

from firmware.app.node import Node
from firmware.cards.purse import Sam
from firmware.config.catalog import load_catalog
from firmware.identity.keyset import read_card_master
from firmware.identity.signing import Identity
from simulator.backends.accounts import AccountBook
from simulator.dev_keys import DevKeys
from simulator.fleet.model import plan_machine, school_of, stockable
from simulator.fleet.worker import MachineStats, machine_day, school_cards, school_cards_file, weekly_top_ups
from simulator.paths import CONFIGS
from simulator.scenarios.card_specs import account_orders, default_account
from simulator.scenarios.purses import PurseCards
from simulator.servers.broker_setup import BrokerAccess
from simulator.tally import SalesTally

CATALOG = CONFIGS / "products" / "campus.yaml"
DRAIN_S = 120.0  # how long closing a machine waits for its outbox to drain; what is left is reported
PARALLEL_DRAINS = 4  # a batched outbox drains in one round trip; each open publisher adds threads that wake


SUMMED_OVER_DAYS = (
    *("days", "visits", "reports", "settlements", "delivered", "settlements_delivered", "resends", "top_ups"),
)


@dataclass
class FleetResult(SalesTally):
    days: int = 0
    machines: int = 0
    visits: int = 0
    reports: int = 0
    settlements: int = 0
    delivered: int = 0
    settlements_delivered: int = 0
    resends: int = 0  # copies the backends had already stored (at-least-once on the wire), skipped
    top_ups: int = 0  # NT$ guardians paid in at stores (the purse on the card: Monday top-ups)
    broker: str = ""
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    # machines whose outbox still held rows once their drain gave up: where a lost delivery stands
    stranded: Counter[str] = field(default_factory=Counter)

    def add_machine(self, stats: MachineStats) -> None:
        self.add(stats)
        self.machines += 1
        if stats.undelivered:
            self.stranded[stats.machine] += stats.undelivered
        self.visits += stats.visits
        self.reports += stats.reports
        self.settlements += stats.settlements
        self.top_ups += stats.top_ups

    def absorb(self, other: FleetResult) -> None:
        """Add another day's run of the same fleet (a term is the sum of its days)."""
        self.add(other)
        for name in SUMMED_OVER_DAYS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.machines = max(self.machines, other.machines)
        self.stranded.update(other.stranded)  # a Counter's update adds
        self.wall_s += other.wall_s
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)

    def outcome(self) -> dict[str, Any]:
        """What the same seed must reproduce: everything but timing and the network's resends."""
        return {
            "days": self.days,
            "machines": self.machines,
            "visits": self.visits,
            "sales": self.sales,
            "revenue": self.revenue,
            "refunds": self.refunds,
            "denials": dict(sorted(self.denials.items())),
            "cancellations": dict(sorted(self.cancellations.items())),
            "reports": self.reports,
            "settlements": self.settlements,
            "delivered": self.delivered,
            "settlements_delivered": self.settlements_delivered,
            "top_ups": self.top_ups,
        }


def _worker(
    indexes: list[int],
    day: date,
    students: int,
    seed: int,
    root: str,
    access: BrokerAccess,
    keys_dir: str,
    results: Any,
    term_start: date | None = None,
    keep_state: bool = False,
    payment: str = "machine_wallet",
    per_school: int = 1,
) -> None:
    """A worker process: simulate each machine, then drain outboxes a few at a time, overlapping the next day.

    With purse cards, a school's machines run here one after another on the school's cards (as they
    were left by the term's last day), so a card spends at each of them and its own log carries the
    day's spend from one to the next.
    """
    catalog = load_catalog(CATALOG)
    products = stockable(catalog)
    keys = DevKeys(Path(keys_dir))  # made by the caller; each worker adds only its own machines' keys
    sam = Sam(read_card_master(keys.directory))
    draining: deque[tuple[Node, MachineStats, Path]] = deque()

    def finish_one() -> None:
        node, stats, state_dir = draining.popleft()
        node.disconnect(DRAIN_S)
        stats.undelivered = node.books.journal.outbox.depth()
        node.close()
        if not keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
        results.put(stats)

    for school_number, school in groupby(indexes, key=lambda index: school_of(index, per_school)):
        purses: PurseCards | None = None
        top_ups = 0
        for index in school:
            plan = plan_machine(index, day, students, seed, products, payment, per_school)
            if payment == "card" and purses is None:
                purses = school_cards(keys, plan, sam)
                top_ups = weekly_top_ups(purses, day)
            state_dir = Path(root) / plan.machine_id
            address = access.machine(plan.machine_id)
            node, stats = machine_day(plan, catalog, state_dir, keys, term_start, address, purses)
            stats.top_ups, top_ups = top_ups, 0  # counted once, with the school's first machine
            node.connect()  # drain the day's outbox while the next machine's day runs
            draining.append((node, stats, state_dir))
            if len(draining) >= PARALLEL_DRAINS:
                finish_one()
        if purses is not None:
            purses.save(school_cards_file(keys, school_number))
    while draining:
        finish_one()
    results.put(("rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def run_fleet(
    machines: int,
    day: date,
    students: int,
    seed: int,
    access: BrokerAccess,
    processes: int,
    keys_dir: Path,
    progress: Any = None,
    state_root: Path | None = None,
    term_start: date | None = None,
    keep: Path | None = None,
    payment: str = "machine_wallet",
    per_school: int = 1,
) -> FleetResult:
    """Simulate and drain every machine; the caller owns the broker and the backends.

    ``term_start``: the day the term began (its term keys are the school's, kept with the keys);
    ``keep``: keep each machine's state dir (``machine.db``) under this directory, where a later day
    of the same term finds it again (a machine's sequence numbers and books continue).
    ``payment``: ``card`` gives every student a purse card; ``per_school``: machines a school (a
    school's machines share one worker, so its cards travel between them in order).
    """
    result = FleetResult(days=1)
    started = time.perf_counter()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    root = keep or Path(tempfile.mkdtemp(prefix="fleet-", dir=state_root or _fast_tmp()))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    schools = -(-machines // per_school)
    processes = max(1, min(processes, schools))
    workers = [
        context.Process(
            target=_worker,
            args=(
                [index for index in range(machines) if school_of(index, per_school) % processes == p],
                day,
                students,
                seed,
                str(root),
                access,
                str(keys_dir),
                results,
                term_start,
                keep is not None,
                payment,
                per_school,
            ),
            daemon=True,
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    rss_kb, finished = 0, 0
    while finished < processes:
        try:
            item = results.get(timeout=1.0)
        except queue.Empty:
            if not any(w.is_alive() for w in workers):
                raise RuntimeError("fleet workers died; see their error output") from None
            continue
        if isinstance(item, tuple):
            rss_kb = max(rss_kb, int(item[1]))
            finished += 1
            continue
        result.add_machine(item)
        if progress is not None:
            progress(result)
    for worker in workers:
        worker.join(timeout=30)
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)
    result.wall_s = time.perf_counter() - started
    result.peak_rss_mb = rss_kb / 1024
    return result


def open_accounts(
    book: AccountBook, issuer: Identity, machines: int, day: date, students: int, seed: int, per_school: int = 1
) -> int:
    """``payment: account``: every school's cards opened as accounts at the issuer (once a term); their money.

    A staff card is an adult's account; a student card a 15-year-old's with a guardian linked
    (``card_specs.default_account``), holding the money the fleet model gives the card.
    """
    products = stockable(load_catalog(CATALOG))
    for index in range(0, machines, per_school):  # a school's first machine names its students
        plan = plan_machine(index, day, students, seed, products, "account", per_school)
        for n, card in enumerate(plan.cards):
            if book.get(card.uid) is None:
                account = default_account(f"card-{n}", card.profile, card.balance, day)
                for order in account_orders(card.uid, card.profile, account, day):
                    book.order(issuer, order)
    return book.total()


def _fast_tmp() -> str | None:
    """Machine state on tmpfs when there is one: the fleet measures CPU, not the laptop's disk."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
