"""Tap -> authorisation decision through a PN532 on a real pty at 115200 baud, against the wire time
of one InListPassiveTarget response frame at that speed (the time the reader needs just to say "card").

Measured twice: on the bare pty (bytes arrive at once) and with the emulator pacing its bytes as a
real UART at 115200 baud would (``--pace``), so the second figure includes the frames' wire time.
Each card comes to a reader that is waiting for one (its standing search is out), as at a machine
where taps are seconds apart; a card within 0.1 s of the last read would wait for the next search.
The clock starts when the emulated card is placed and stops when the controller has decided (debit
committed, or denial journaled); it includes polling, ACK + response frames over the pty, the driver,
debounce, and the durable decision.
Run: .venv/bin/python bench/reader_latency.py [--taps N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CARDS, SLOTS, demo_machine, merge_results, summary_ms  # noqa: E402
from firmware.readers import pn532_frames  # noqa: E402
from firmware.readers.registry import open_reader, protocol_of  # noqa: E402
from simulator.emulators.devices import PN532Device  # noqa: E402

BAUD = protocol_of("pn532").baud


def frame_wire_ms() -> float:
    """One InListPassiveTarget response with a 7-byte uid, 10 bits per byte (8N1) at 115200 baud."""
    frame = pn532_frames.encode(pn532_frames.response(0x4A, bytes.fromhex("0101004400070416C6C2D73881")))
    return len(frame) * 10 / BAUD * 1000


def measure(taps: int, pace: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        machine, clock, _ = demo_machine(Path(tmp) / "machine")
        device = PN532Device(Path(tmp) / "reader0", pace=pace).start()
        reader: Any = open_reader(f"pn532:{Path(tmp) / 'reader0'}?debounce=0", clock)  # a PN532Reader
        controller = machine.controller
        decided = {"at": 0.0}
        controller._events = lambda at, name, details: (
            decided.update(at=time.perf_counter()) if name in ("debited", "denied") else None
        )
        samples = []
        reader.read_tap(0.1)  # open and configure the reader first
        for i in range(taps):
            controller.dispatch("select", SLOTS[i % len(SLOTS)])
            while reader.searching_since is None:  # the card comes to a reader waiting for one, as at a machine
                reader.read_tap(0.05)
            decided["at"] = 0.0
            started = time.perf_counter()
            device.tap(CARDS[i % len(CARDS)])
            tap = None
            while tap is None:
                tap = reader.read_tap(0.5)
            controller.present(tap)
            samples.append(decided["at"] - started)
        reader.close()
        device.stop()
        machine.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=300)
    args = parser.parse_args()
    unpaced = summary_ms(measure(args.taps, pace=False))
    paced = summary_ms(measure(args.taps, pace=True))
    wire = frame_wire_ms()
    merge_results(
        "reader_latency",
        {
            "baud": BAUD,
            "tap_to_decision": unpaced,
            "tap_to_decision_paced": paced,
            "inlistpassivetarget_frame_wire_ms": round(wire, 3),
            "p50_over_frame": round(unpaced["p50_ms"] / wire, 2),
        },
    )
    for name, figures in (("pty, unpaced", unpaced), (f"paced as a {BAUD}-baud UART", paced)):
        print(f"tap -> decision ({name}): p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms")
    print(f"one InListPassiveTarget response frame on the wire at {BAUD} baud: {wire:.2f} ms")


if __name__ == "__main__":
    main()
