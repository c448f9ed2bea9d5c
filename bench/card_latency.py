"""A card-mode sale's tap -> decision through the PN532 paced as a 115200-baud UART, against its wire time.

Issue 31's card-mode target: tap -> decision p99 <= 1.5 x the wire time of the frames that decision
needs. The machine is the node as `vending serve` builds it with `payment: {mode: card}`: the
controller, its journal (two commits on a real file: the intent, then the debit) and the purse
adapter, reading the card through the real PN532 driver over a pty to the emulator. Each sale is
selection first, as at a stored-value vending machine: the clock starts when the card is placed
on a reader waiting for one, and stops at the decision, the debit committed after the card read it
back (the ``debited`` event), through the driver finding the card, the purse read and recovery,
the intent, the three writes, the read-back and InRelease. The floor is the wire time of every
byte both ends sent meanwhile (8N1: 10 bits a byte), from the emulator's own trace of the pty.
Run: .venv/bin/python bench/card_latency.py [--taps N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import merge_results, summary_ms  # noqa: E402
from firmware.app.node import Node  # noqa: E402
from firmware.cards.purse import CardRecord, issue_image  # noqa: E402
from firmware.config.machine import load_machine  # noqa: E402
from firmware.controller.records import Hardware  # noqa: E402
from firmware.readers.registry import open_reader, protocol_of  # noqa: E402
from simulator.emulators.devices import PN532Device  # noqa: E402
from simulator.hardware.virtual import RecordingDisplay, VirtualClock, VirtualDispenser  # noqa: E402
from simulator.paths import MACHINES  # noqa: E402
from simulator.scenarios.purses import simulation_card_master  # noqa: E402
from simulator.term_keys import simulation_term_key  # noqa: E402

BAUD = protocol_of("pn532").baud
TARGET = 1.5
START = datetime.fromisoformat("2026-03-02T08:00:00+08:00")
SLOT = "A1"


def card_machine(state: Path, events: Any) -> Node:
    setup = load_machine(MACHINES / "demo.yaml")
    payment = setup.config.payment.model_copy(update={"mode": "card"})
    setup = replace(setup, config=setup.config.model_copy(update={"payment": payment}))
    simulation_term_key(state, START.date())
    dispenser = VirtualDispenser({code: 10**6 for code in setup.config.slots})
    hardware = Hardware(VirtualClock(START), RecordingDisplay(), dispenser)
    return Node(setup, state, hardware, events=events).start(connect=False)


def measure(taps: int) -> tuple[list[float], list[float]]:
    """(tap -> decision, wire time of the bytes that needed) per sale, seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        state, cards = Path(tmp) / "machine", Path(tmp) / "cards"
        cards.mkdir()
        sam = simulation_card_master(state)
        uids = [f"04{n:06X}" for n in range(1, 9)]
        for uid in uids:
            record = CardRecord("staff", "353301", START.date())
            (cards / f"{uid}.mfd").write_bytes(issue_image(bytes.fromhex(uid), record, 10_000, sam))
        decided: list[float] = []
        node = card_machine(
            state, lambda at, name, details: decided.append(time.perf_counter()) if name == "debited" else None
        )
        device = PN532Device(Path(tmp) / "reader0", pace=True, cards=cards).start()
        reader: Any = open_reader(f"pn532:{Path(tmp) / 'reader0'}?debounce=0", node.controller.hw.clock)
        reader.read_tap(0.1)
        samples, floors = [], []
        for i in range(taps):
            node.controller.restock({SLOT: 8})
            node.controller.dispatch("select", SLOT)
            while reader.searching_since is None:  # the card comes to a reader waiting for one
                reader.read_tap(0.05)
            device.port.trace = []
            started = time.perf_counter()
            device.place(uids[i % len(uids)])
            tap = None
            while tap is None:
                tap = reader.read_tap(0.5)
            decided.clear()
            node.controller.present(tap)
            if len(decided) != 1:
                raise RuntimeError(f"sale {i}: no decision ({node.controller.last_transaction})")
            samples.append(decided[0] - started)
            sent = sum(len(data) for _, data in device.port.trace)
            floors.append(sent * 10 / BAUD)
            device.port.trace = None
            device.remove()
        reader.close()
        device.stop()
        node.close()
    return samples, floors


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--taps", type=int, default=200)
    args = parser.parse_args()
    samples, floors = measure(args.taps)
    figures = summary_ms(samples)
    floor = summary_ms(floors)
    ratio = figures["p99_ms"] / floor["p50_ms"]
    merge_results(
        "card_latency",
        {
            "baud": BAUD,
            "tap_to_decision": figures,
            "wire_floor": floor,
            "p99_over_floor": round(ratio, 2),
            "target": TARGET,
            "met": ratio <= TARGET,
        },
    )
    at = f"p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms"
    print(f"card-mode sale, tap -> decision (paced {BAUD} baud): {at}")
    print(f"wire time of the bytes it needed: {floor['p50_ms']:.1f} ms; p99 / floor = {ratio:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
