"""The machines of a scenario: the main one and, where cards travel, others of the same school.

A station is one machine with the hardware around it (its display, its tray and its door) and its
own state dir; the clock, the card reader's taps and the cards are the run's. A ``machine: NAME``
step walks the card holders to another station: the steps after it act there. Cards travel between
stations only where their money does, on the card (``payment: card``) or at the issuer
(``payment: account``): two machine wallets would each hold a copy of a card's balance.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from firmware.app.node import Link, Node
from firmware.config.machine import MachineSetup, TechnicianSetup
from firmware.identity.pseudonym import technician_name
from firmware.identity.secretfile import write_secret
from firmware.journal.guardians import GuardianBook
from simulator.hardware.virtual import DoorSwitch, RecordingDisplay, VirtualDispenser
from simulator.scenarios.card_specs import CardSpec
from simulator.scenarios.purses import PurseCards, install_card_master
from simulator.scenarios.schema import MAIN_MACHINE, Scenario

TECHNICIAN_KEY = "technician.key"  # a run's own vendor key naming its technician cards (never a shipped secret)
LinkFor = Callable[[str], Link]  # machine id -> its way to the broker (the reporting world's machine_link)


@dataclass
class Station:
    name: str
    setup: MachineSetup
    state_dir: Path
    link: Link | None
    display: RecordingDisplay = field(default_factory=RecordingDisplay)
    door: DoorSwitch = field(default_factory=DoorSwitch)
    dispenser: VirtualDispenser = field(init=False)
    node: Node | None = None

    def __post_init__(self) -> None:
        self.dispenser = VirtualDispenser({code: slot.stock for code, slot in self.setup.config.slots.items()})

    @property
    def machine(self) -> Node:
        if self.node is None:
            raise RuntimeError(f"machine {self.name} has not booted")
        return self.node


def stations_of(scenario: Scenario, state_dir: Path, link: Link | None, link_for: LinkFor | None) -> dict[str, Station]:
    """The main machine on ``state_dir``; each other one on a state dir beside it, with the main one's SAM key."""
    main = with_technicians(scenario.machine, state_dir, scenario.technicians)
    stations = {MAIN_MACHINE: Station(MAIN_MACHINE, main, state_dir, link)}
    for name, setup in scenario.others.items():
        other_dir = state_dir.with_name(f"{state_dir.name}-{name}")
        if setup.config.payment.mode == "card":  # the same issuer's card master in every machine's SAM
            other_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            install_card_master(state_dir, other_dir)
        other_link = link_for(setup.config.id) if link_for is not None and link is not None else None
        setup = with_technicians(setup, state_dir, scenario.technicians)
        stations[name] = Station(name, setup, other_dir, other_link)
    return stations


def with_technicians(setup: MachineSetup, state_dir: Path, technicians: dict[str, str]) -> MachineSetup:
    """The machine knowing the run's technician cards (``technicians:``), by a vendor key made for the run."""
    if not technicians:
        return setup
    key_file = state_dir / TECHNICIAN_KEY
    if not key_file.exists():
        write_secret(key_file, secrets.token_bytes(32).hex().encode())
    key = bytes.fromhex(key_file.read_text().strip())
    names = [technician_name(key, uid) for uid in technicians.values()]
    wanted = TechnicianSetup(key=str(key_file.resolve()), cards=names)
    return replace(setup, config=setup.config.model_copy(update={"technicians": wanted}))


def issue_cards(machine: Node, cards: Iterable[CardSpec], purses: PurseCards | None = None) -> None:
    """Cards (as a scenario or ``--cards`` file lists them): into the machine's wallet, or onto purse cards.

    With the purse on the card, or an account at the issuer (opened by the run's reporting world),
    the machine keeps only guardians' controls (pushed by the school).
    """
    in_wallet = purses is None and machine.controller.config.payment.mode == "machine_wallet"
    with machine.db.atomic("journal"):
        for card in cards:
            guardian = card.guardian.guardian() if card.guardian else None
            if in_wallet:
                machine.books.wallet.issue(card.uid, card.profile, card.money, guardian)
                continue
            if purses is not None:
                purses.issue(card.uid, card.profile, card.money)
            if guardian is not None:
                GuardianBook(machine.db).set(card.uid, guardian)
