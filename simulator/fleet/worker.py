"""One machine's school day on virtual time, then its outbox drained to the broker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from firmware.app.node import Link, Node
from firmware.cards.purse import Sam
from firmware.config.catalog import Catalog
from firmware.config.machine import MachineConfig, MachineSetup
from firmware.controller.machine import State
from firmware.controller.records import Hardware
from firmware.domain import CardTap
from firmware.messages import Message
from firmware.reporting.mqtt import BrokerAddress
from simulator.dev_keys import DevKeys
from simulator.fleet.model import RESTOCK_AT, ZONE, MachinePlan, fleet_rulesets
from simulator.hardware.virtual import VirtualClock, VirtualDispenser, advance
from simulator.scenarios.purses import PurseCards, install_card_master
from simulator.tally import SalesTally
from simulator.term_keys import share_term_key

DAY_END = time(18, 0)
WEEKLY_TOP_UP_BELOW, WEEKLY_TOP_UP = 200, 300  # NT$: a guardian's Monday top-up of a card running low


class NullDisplay:
    """The fleet does not look at screens; a real display's cost is not the point here."""

    def show(self, message: Message) -> None:
        pass


@dataclass
class MachineStats(SalesTally):
    machine: str = ""
    visits: int = 0
    reports: int = 0  # vendor-stream reports the machine produced
    settlements: int = 0  # issuer-stream reports
    undelivered: int = 0  # outbox rows left when the run ended
    top_ups: int = 0  # NT$ paid in at stores for this machine's school today (its first machine only)


def simulate_day(
    plan: MachinePlan, catalog: Catalog, state_dir: Path, keys: DevKeys, term_start: date | None = None
) -> MachineStats:
    """One machine's day with no network: its reports stay in the outbox of ``state_dir``."""
    node, stats = machine_day(plan, catalog, state_dir, keys, term_start)
    node.close()
    return stats


def machine_day(
    plan: MachinePlan,
    catalog: Catalog,
    state_dir: Path,
    keys: DevKeys,
    term_start: date | None = None,
    address: BrokerAddress | None = None,
    purses: PurseCards | None = None,
) -> tuple[Node, MachineStats]:
    """Run every visit through the real node (controller, journal, outbox, its tick); the node is left open.

    The caller connects it to ``address`` to drain the day's outbox (``Node.connect``), or closes it.
    The machine's term key is the school's (kept with the run's keys, ``school_term_dir``), so every
    day of a term started on ``term_start`` pseudonymises under the same key.
    """
    config = MachineConfig.model_validate(plan.config)
    setup = MachineSetup(config, catalog, state_dir / "machine.yaml", fleet_rulesets())
    day = plan.day
    clock = VirtualClock(datetime.combine(day, time(7, 0), tzinfo=ZONE))
    dispenser = VirtualDispenser({code: slot.stock for code, slot in config.slots.items()})
    stats = MachineStats(machine=plan.machine_id, visits=len(plan.visits))

    # the drain is the day's last act: no heartbeats to speak of, and resends soon after a lost ack
    link = Link(address, keys.trust, keys.machine(plan.machine_id), heartbeat_s=3600, resend_after_s=5.0)
    share_term_key(school_term_dir(keys, plan.machine_id), state_dir, term_start or day, "fleet")
    if purses is not None:  # the purse on the card: the machine's SAM holds the issuer's card master
        install_card_master(keys.directory, state_dir)
    machine = Node(setup, state_dir, Hardware(clock, NullDisplay(), dispenser), link=link, events=stats.on_event)
    in_wallet = config.payment.mode == "machine_wallet"
    if in_wallet:
        with machine.db.atomic("journal"):  # a later day of a term: the cards are known, with their balances
            machine.books.wallet.issue_missing((card.uid, card.profile, card.balance) for card in plan.cards)
    sent_before = {stream: machine.books.journal.last_seq(stream) for stream in ("vendor", "issuer")}  # earlier days
    # its stock snapshot at boot is one of the day's reports; an account machine asks its issuer at each
    # tap, so it is online all day (the others report after the day: the drain is timed on its own)
    online = config.payment.mode == "account" and address is not None
    machine.start(connect=online)
    if online and machine.publisher is not None and not machine.publisher.wait_connected(30):
        raise RuntimeError(f"{plan.machine_id}: could not reach the broker to ask the issuer")
    controller = machine.controller

    def until(moment: datetime) -> None:
        advance(machine, clock, max(moment, clock.now()))

    restock_at = datetime.combine(day, RESTOCK_AT, tzinfo=ZONE)
    restocked = False
    for visit in plan.visits:
        if not restocked and visit.at >= restock_at:
            until(restock_at)
            restock(controller, dispenser, config)
            restocked = True
        until(visit.at)
        tap = CardTap(visit.uid, "virtual", clock.now(), link=purses.link(visit.uid) if purses else None)
        if visit.jams:
            dispenser.jam(visit.slot)
        if visit.card_first:
            controller.present(tap)
            if not visit.walks_away and controller.state is State.AWAITING_SELECTION:
                controller.dispatch("select", visit.slot)
        else:
            controller.dispatch("select", visit.slot)
            if not visit.walks_away and controller.state is State.AWAITING_CARD:
                controller.present(tap)
        if not visit.walks_away and controller.state is not State.IDLE:
            controller.dispatch("cancel")  # refused and gave up
    until(datetime.combine(day, DAY_END, tzinfo=ZONE))
    controller.close_day(day.isoformat())  # the simulated day ends at DAY_END, not at midnight
    stats.reports = machine.books.journal.last_seq("vendor") - sent_before["vendor"]
    stats.settlements = machine.books.journal.last_seq("issuer") - sent_before["issuer"]
    return machine, stats


def school_cards(keys: DevKeys, plan: MachinePlan, sam: Sam) -> PurseCards:
    """The school's purse cards as the last day of the term left them (issued on its first day)."""
    purses = PurseCards(sam, str(plan.config["school"]["code"]), plan.day)
    if not purses.load(school_cards_file(keys, plan.school)):
        for card in plan.cards:
            purses.issue(card.uid, card.profile, card.balance)
    return purses


def weekly_top_ups(purses: PurseCards, day: date, below: int = WEEKLY_TOP_UP_BELOW, amount: int = WEEKLY_TOP_UP) -> int:
    """Mondays, a guardian tops a running-low card up at a convenience store; the money paid in."""
    if day.weekday() != 0:
        return 0
    paid = 0
    for uid in purses.cards:
        if purses.balance(uid) < below:
            purses.topup(uid, amount, "7-ELEVEN-FLEET", datetime.combine(day, time(7, 0), tzinfo=ZONE))
            paid += amount
    return paid


def school_cards_file(keys: DevKeys, school: int) -> Path:
    return keys.directory / "school" / "cards" / f"{school}.cards"


def school_term_dir(keys: DevKeys, machine_id: str) -> Path:
    """Where the school keeps a machine's term key in a simulated run: beside every party's keys."""
    return keys.directory / "school" / "terms" / machine_id


def restock(controller: Any, dispenser: VirtualDispenser, config: MachineConfig) -> None:
    """The route driver's visit: door open (any session ends), every slot filled, door closed."""
    controller.dispatch("door_open")
    full = {code: slot.capacity for code, slot in config.slots.items()}
    for code, count in full.items():
        dispenser.fill(code, count)
    controller.restock(full)
    controller.dispatch("door_close")
