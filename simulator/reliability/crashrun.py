"""One vend in a process that may die at a named crash point; then recovery and an invariant report.

The crash harness (tests/simulator/reliability/test_crash_points.py) runs, for every crash point and every
kind of vend, three processes on the same state: ``setup``; ``run`` with
``VENDING_CRASH_AT=<point>`` (the process dies there with ``os._exit``, as in a power cut); and
``recover``, which boots on the same files, lets recovery settle, drains the outbox to the vendor
backend and prints the invariants as JSON. Usage::

    python -m simulator.reliability.crashrun setup|run|recover --dir DIR --broker mqtt://127.0.0.1:PORT --kind KIND

The cases are fixed here, by ``matrix()``: the machine-side points each kind reaches and how often
(``MACHINE_SIDE``), and the network-side points every report passes, crashed at their first arrival.
A run does the kind's transactions before reporting starts, so which points it reaches does not
depend on thread timing; a test re-traces each kind and fails when the code reaches something else.
docs/reliability.md lists the cases from ``matrix()`` (``python -m simulator.docgen``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from firmware.app.node import Node
from firmware.cards.purse import Sam, read_image
from firmware.config.machine import load_machine
from firmware.controller.records import Hardware
from firmware.domain import CardTap
from firmware.journal.account_auths import AccountAuths
from firmware.journal.card_steps import CardSteps
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.publisher import OutboxPublisher
from simulator.backends.accounts import AccountBook
from simulator.backends.store import SqliteReportStore
from simulator.hardware.virtual import PersistentDispenser, RecordingDisplay, VirtualClock
from simulator.paths import MACHINES
from simulator.reliability import card_world
from simulator.reliability.card_world import card_link, issue_card
from simulator.scenarios.card_specs import STAFF_BORN, AccountSpec, account_orders
from simulator.scenarios.purses import simulation_card_master
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.term_keys import simulation_term_key

KINDS = (
    "success", "jam", "denial", "cancel", "timeout", "restock", "release", "backlog", "card_success", "card_jam",
    "account_success", "account_jam",
)  # fmt: skip
CARD_KINDS = ("card_success", "card_jam")  # the purse on the card (payment: card): the card is a file too
# an account at the issuer (payment: account): the run has no link yet, so the debit is approved
# offline and captured through the outbox; the issuer's database is part of the world
ACCOUNT_KINDS = ("account_success", "account_jam")
ACCOUNT_CARD, ACCOUNT_BALANCE = "04C3D4E5F60718", 100
PHASE_TIMEOUT_S = 180
MODULE = "simulator.reliability.crashrun"
RESTOCK = {"C1": 12}  # the restock kind refills another slot: committed whole or not at all
START = datetime.fromisoformat("2026-03-02T09:00:00+08:00")
CARDS = {"04A1B2C3D4E5F6": ("student", 100), "04B2C3D4E5F607": ("student", 5)}
PURSE_CARD, PURSE = "04A1B2C3", 100
SLOT = "A1"
RELEASE_MINUTES = 15  # the "release" kind: a sale held for its window, then released
BACKLOG_SALES = 3  # the "backlog" kind: sales while the link is down, then sent as one batch


def _each(*points: str, times: int = 1) -> dict[str, int]:
    return dict.fromkeys(points, times)


_PAID = ("debit.before_commit", "debit.after_commit", "dispense.after_motor")  # money taken, motor turned
_DROPPED = ("drop.before_commit", "drop.after_commit")
_JOURNAL = ("journal.before_commit", "journal.after_commit")
_KIND_OWN: dict[str, dict[str, int]] = {  # kind -> crash point -> how many times its own transactions reach it
    "success": _each(*_PAID, *_DROPPED, "outbox.insert"),
    "jam": {**_each(*_PAID, "refund.before_commit", "refund.after_commit"), "outbox.insert": 2},
    "denial": {**_each(*_JOURNAL, times=2), "outbox.insert": 1},
    "cancel": _each(*_JOURNAL),
    "timeout": _each(*_JOURNAL),
    "restock": {**_each("stock.before_commit", "stock.after_commit", *_JOURNAL), "outbox.insert": 2},
    "release": _each(*_PAID, *_DROPPED, *_JOURNAL, "outbox.insert", "outbox.release"),
    "backlog": _each(*_PAID, *_DROPPED, "outbox.insert", times=BACKLOG_SALES),
    # the intent is committed before the card's three writes (backup, log, balance), then the vend opens
    "card_success": {
        **_each("intent.before_commit", "intent.after_commit", *_PAID, *_DROPPED, "outbox.insert"),
        "card.after_write": 3,
    },  # fmt: skip
    # the refund is owed in its commit, then paid to the card at hand: its attempt, three writes, done
    "card_jam": {
        **_each("intent.before_commit", "intent.after_commit", *_PAID, "refund.before_commit", "refund.after_commit"),
        **_each("card_step.before_commit", "card_step.after_commit", times=2),
        "card.after_write": 6,
        "outbox.insert": 2,
    },
}
# an account's debit: its intent first; each outcome (captured, then refunded) is one more report to the issuer
_INTENT = _each("intent.before_commit", "intent.after_commit")
_KIND_OWN["account_success"] = {**_KIND_OWN["success"], **_INTENT, "outbox.insert": 2}
_KIND_OWN["account_jam"] = {**_KIND_OWN["jam"], **_INTENT, "outbox.insert": 4}
# a card pulled after each of its writes (not a power cut: the machine carries on), per card kind
TEARS = {"card_success": 3, "card_jam": 6}
_BOOT = _each(*_JOURNAL, "outbox.insert")  # every start-up announces the machine: its stock snapshot, journaled
MACHINE_SIDE: dict[str, dict[str, int]] = {  # kind -> crash point -> how many times a clean run reaches it
    kind: {point: own.get(point, 0) + _BOOT.get(point, 0) for point in {**_BOOT, **own}}
    for kind, own in _KIND_OWN.items()
}
# Every report leaves the machine and is stored and acked through these points, once per message at
# least; a batch also passes the batch points. How many times more (retries, acks covering several
# reports) is the network's timing, so the matrix crashes at each one's first arrival only.
NETWORK_POINTS = (
    "publish.before",
    "publish.after",
    "backend.insert.before_commit",
    "backend.insert.after_commit",
    "backend.ack.after",
    "ack.received",
    "outbox.delete.after_commit",
)
BATCH_POINTS = ("publish.batch", "backend.batch.verified")
# more than one batchable report waits when reporting starts (a restock's: the boot snapshot, which its
# newer snapshot replaces, rides in a batch with the report between them)
BATCHED_KINDS = ("jam", "restock", "backlog", "card_jam", "account_jam")
NETWORK_SIDE = ("publish.", "ack.", "backend.", "outbox.delete.")


def matrix() -> dict[str, dict[str, int]]:
    """Every (kind, crash point) case and how many arrivals of it to crash at: fixed by this code."""
    cases: dict[str, dict[str, int]] = {}
    for kind, points in MACHINE_SIDE.items():
        reports = "outbox.insert" in points
        network = (*NETWORK_POINTS, *(BATCH_POINTS if kind in BATCHED_KINDS else ())) if reports else ()
        cases[kind] = {**points, **dict.fromkeys(network, 1)}
    return cases


def cases() -> list[tuple[str, str, int]]:
    return [
        (kind, point, nth)
        for kind, points in matrix().items()
        for point, most in points.items()
        for nth in range(1, most + 1)
    ]


def tear_cases() -> list[tuple[str, int]]:
    """Every (card kind, write after which the card is pulled): fixed by this code, like ``cases``."""
    return [(kind, writes) for kind, most in TEARS.items() for writes in range(1, most + 1)]


def boot(
    directory: Path, broker: str, release_minutes: int = 0, at: datetime = START, mode: str = "machine_wallet"
) -> tuple[Node, ReportingWorld, VirtualClock]:
    setup = load_machine(MACHINES / "demo.yaml")
    payment = setup.config.payment.model_copy(update={"mode": mode})
    update = {"release_minutes": release_minutes, "payment": payment}
    setup = replace(setup, config=setup.config.model_copy(update=update))
    clock = VirtualClock(at)
    dispenser = PersistentDispenser(directory / "world.json", {c: s.stock for c, s in setup.config.slots.items()})
    world = ReportingWorld(directory / "world", broker=broker, resend_after_s=1.0)
    world.broker_address = BrokerAddress.parse(broker)
    simulation_term_key(directory / "machine", START.date(), "crash")
    hardware = Hardware(clock, RecordingDisplay(), dispenser)
    machine = Node(setup, directory / "machine", hardware, link=world.machine_link(setup.config.id))
    return machine, world, clock


def mode_of(kind: str) -> str:
    return "card" if kind in CARD_KINDS else "account" if kind in ACCOUNT_KINDS else "machine_wallet"


def start_reporting(world: ReportingWorld, machine: Node) -> OutboxPublisher:
    world.vendor = world.new_vendor().start()
    world.vendor.connected.wait(15)
    if machine.controller.config.payment.mode == "account":  # its captures go to the issuer
        world.issuer = world.new_issuer().start()
        world.issuer.connected.wait(15)
    return machine.connect()


def issuer_money(world: ReportingWorld) -> int:
    """The accounts at the issuer, less the offline debts it declined (vended, never collected)."""
    store = SqliteReportStore(world.workdir / "issuer.db", "issuer")
    try:
        book = AccountBook(store)
        return book.total() - sum(amount for _, _, amount in book.declined_debts())
    finally:
        store.close()


def do_setup(directory: Path, broker: str, kind: str = "success") -> dict[str, Any]:
    mode = mode_of(kind)
    if mode == "card":
        sam = simulation_card_master(directory / "machine")
        issue_card(directory, PURSE_CARD, "student", PURSE, "353301", sam, START.date())
    machine, world, _ = boot(directory, broker, mode=mode)
    with machine.db.atomic("journal"):
        for uid, (profile, balance) in CARDS.items():
            machine.books.wallet.issue(uid, profile, balance)
    if mode == "account":
        open_account(world)
    total = machine.invariant_total() + (PURSE if mode == "card" else 0)
    total += issuer_money(world) if mode == "account" else 0
    start = {"total": total, "stock": machine.books.inventory.stock(), "mode": mode}
    (directory / "start.json").write_text(json.dumps(start))
    machine.close()
    return {"total": total}


def do_run(directory: Path, broker: str, kind: str) -> dict[str, Any]:
    """The kind's transactions first, then reporting: what reaches the wire, and in which messages, is fixed.

    With the publisher running during the sale, whether two reports travel alone or as one batch
    (and so which crash points a run reaches) would depend on thread timing; the matrix must not.
    """
    mode = mode_of(kind)
    machine, world, clock = boot(directory, broker, RELEASE_MINUTES if kind == "release" else 0, mode=mode)
    machine.start(connect=False)
    controller = machine.controller
    tap = CardTap(next(iter(CARDS)), "virtual", clock.now())
    if mode == "card":
        tap = CardTap(PURSE_CARD, "virtual", clock.now(), link=card_link(directory))
    elif mode == "account":
        tap = CardTap(ACCOUNT_CARD, "virtual", clock.now())
    if kind in ("jam", "card_jam", "account_jam"):
        controller.hw.dispenser.jam(SLOT)  # type: ignore[attr-defined]
    if kind in ("success", "jam", "release", *CARD_KINDS, *ACCOUNT_KINDS):
        controller.select(SLOT)
        controller.present(tap)
    if kind == "release":  # the sale was held for its window; the window ends, the machine wakes up
        clock.advance(timedelta(minutes=RELEASE_MINUTES))
        machine.tick()
    elif kind == "backlog":  # sales while the machine has no link: they go out as one batch when it has
        for _ in range(BACKLOG_SALES):
            controller.select(SLOT)
            controller.present(CardTap(tap.uid, "virtual", clock.now()))
            clock.advance(timedelta(minutes=1))
    elif kind == "denial":
        controller.select(SLOT)
        controller.present(CardTap("04B2C3D4E5F607", "virtual", clock.now()))  # NT$5 for a NT$25 milk
        controller.cancel()
    elif kind == "cancel":
        controller.present(tap)
        controller.cancel()
    elif kind == "timeout":
        controller.present(tap)
        clock.advance(timedelta(seconds=31))
        machine.tick()
    elif kind == "restock":
        controller.door_open()
        controller.restock(RESTOCK)
        controller.door_close()
    drained = start_reporting(world, machine).flush(20)
    state = controller.state.value
    # stop the publisher's worker before the process ends: the last ack's delete reaches its crash point
    # after its commit, and a clean run's trace must not depend on whether the worker got there first
    machine.disconnect()
    return {"drained": drained, "state": state}


def do_recover(directory: Path, broker: str) -> dict[str, Any]:
    start = json.loads((directory / "start.json").read_text())
    mode, later = str(start["mode"]), START + timedelta(hours=1)
    machine, world, clock = boot(directory, broker, at=later, mode=mode)  # power back later
    machine.start(connect=False)
    if mode == "card":  # the card's next tap here settles what a pull or the power cut left, then its holder walks away
        machine.controller.present(CardTap(PURSE_CARD, "virtual", clock.now(), link=card_link(directory, tear=False)))
        machine.controller.dispatch("cancel")
    elif mode == "account":  # the next tap voids an intent the cut left without a vend
        machine.controller.present(CardTap(ACCOUNT_CARD, "virtual", clock.now()))
        machine.controller.dispatch("cancel")
    publisher = start_reporting(world, machine)
    assert world.vendor is not None
    drained = publisher.flush(30)
    conn = machine.db.conn
    statuses = dict(conn.execute("SELECT status, COUNT(*) FROM vends GROUP BY status").fetchall())
    debits = dict(conn.execute("SELECT txn_id, COUNT(*) FROM journal WHERE kind = 'vend_debited' GROUP BY txn_id"))
    settles = dict(
        conn.execute(
            "SELECT txn_id, COUNT(*) FROM journal WHERE kind IN ('vend_completed', 'vend_refunded') GROUP BY txn_id"
        )
    )
    backend_txns = [row[0] for row in world.vendor.store.execute("SELECT txn FROM sales")]
    machine_seq = machine.books.journal.last_seq("vendor")
    dispenser: PersistentDispenser = machine.controller.hw.dispenser  # type: ignore[assignment]
    purse = read_image(card_world.image(directory), sam_of(directory)).balance if mode == "card" else 0
    issuer_seq = machine.books.journal.last_seq("issuer")
    issuer_reports = world.issuer.store.count() if world.issuer is not None else 0
    report = {
        "drained": drained,
        "start_total": start["total"],
        "total": machine.invariant_total() + purse + (issuer_money(world) if mode == "account" else 0),
        "card_steps": len(CardSteps(machine.db).all()),
        "in_flight": machine.books.vends.in_flight(),
        "statuses": statuses,
        "debits_per_txn": sorted(set(debits.values())),
        "settlements_per_txn": sorted(set(settles.values())),
        "unsettled": sorted(set(debits) - set(settles)),
        "stock": machine.books.inventory.stock()[SLOT],
        "start_stock": start["stock"][SLOT],
        "confirmed_drops": machine.books.vends.confirmed_drops().get(SLOT, 0),
        "physically_dropped": len(dispenser.dispensed),
        "machine_sales": statuses.get("completed", 0) + statuses.get("refunded", 0),
        "backend_sales": len(backend_txns),
        "backend_distinct_sales": len(set(backend_txns)),
        "machine_denials": conn.execute("SELECT COUNT(*) FROM journal WHERE kind = 'denied'").fetchone()[0],
        "backend_denials": world.vendor.store.count("denial"),
        "machine_reports": machine_seq,
        "backend_reports": world.vendor.store.count(),
        "backend_acked": world.vendor.store.acked(machine.controller.config.id),
        "outbox": publisher.depth(),
        "restock_slot": machine.books.inventory.stock()["C1"],
        "restock_from": start["stock"]["C1"],
        "issuer_reports": issuer_reports,
        "issuer_machine_reports": issuer_seq if mode == "account" else 0,
        "account_left_open": len(AccountAuths(machine.db).left_open()),
    }
    machine.close()
    world.vendor.stop()
    if world.issuer is not None:
        world.issuer.stop()
    return report


def open_account(world: ReportingWorld) -> None:
    """The account card's account at the issuer, in the world's issuer database."""
    store = SqliteReportStore(world.workdir / "issuer.db", "issuer")
    try:
        for order in account_orders(ACCOUNT_CARD, "staff", AccountSpec(balance=ACCOUNT_BALANCE, born=STAFF_BORN),
                                    START.date()):  # fmt: skip
            AccountBook(store).order(world.keys.issuer, order)
    finally:
        store.close()


def sam_of(directory: Path) -> Sam:
    return simulation_card_master(directory / "machine")


def phase(
    name: str, directory: Path, broker: str, kind: str = "success", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one phase in a process of its own (so a crash point can kill it without killing the caller)."""
    command = [sys.executable, "-m", MODULE, name, "--dir", str(directory), "--broker", broker, "--kind", kind]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=PHASE_TIMEOUT_S
    )


def trace(kind: str, directory: Path, broker: str) -> Counter[str]:
    """Which crash points a clean run of ``kind`` reaches, with how many arrivals each."""
    trace_file = directory / f"trace-{kind}.txt"
    state = directory / f"trace-{kind}"
    setup = phase("setup", state, broker, kind)
    if setup.returncode != 0:
        raise RuntimeError(f"setup for {kind} failed: {setup.stderr[-2000:]}")
    run = phase("run", state, broker, kind, {"VENDING_CRASH_TRACE": str(trace_file)})
    if run.returncode != 0:
        raise RuntimeError(f"traced run of {kind} failed: {run.stderr[-2000:]}")
    return Counter(trace_file.read_text().split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("phase", choices=("setup", "run", "recover"))
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--broker")
    parser.add_argument("--kind", choices=KINDS, default="success")
    args = parser.parse_args(argv)
    if args.dir is None or args.broker is None:
        parser.error(f"{args.phase} needs --dir and --broker")
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.phase == "setup":
        result = do_setup(args.dir, args.broker, args.kind)
    elif args.phase == "run":
        result = do_run(args.dir, args.broker, args.kind)
    else:
        result = do_recover(args.dir, args.broker)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
