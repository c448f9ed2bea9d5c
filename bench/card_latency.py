"""A stored-value debit on the card through a PN532 paced as a 115200-baud UART, against its wire time.

Issue 31's card-mode target is tap -> decision p99 <= 1.5 x the wire time of the frames that decision
needs. The card mode is not wired into the controller yet (docs/payments.md), so this measures the
card's part of that decision, which is nearly all of it: from the card placed on a reader waiting
for one, through the driver finding it, the card session (InListPassiveTarget for the uid, MIFARE
authentications, reads, the debit's three writes and the read-back, InRelease), to the debit
confirmed. The floor is the wire time of every byte both ends actually sent in that interval (8N1:
10 bits a byte), taken from the emulator's own trace of the pty.
Run: .venv/bin/python bench/card_latency.py [--taps N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import merge_results, summary_ms  # noqa: E402
from firmware.cards.purse import CardRecord, Sam, issue_image  # noqa: E402
from firmware.cards.purse_io import debit  # noqa: E402
from firmware.readers.registry import open_reader, protocol_of  # noqa: E402
from simulator.emulators.devices import PN532Device  # noqa: E402
from simulator.hardware.virtual import VirtualClock  # noqa: E402

BAUD = protocol_of("pn532").baud
TARGET = 1.5
SAM = Sam(bytes(range(32)))


def measure(taps: int) -> tuple[list[float], list[float]]:
    """(tap -> debit confirmed, wire time of the bytes that needed) per tap, seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        cards = Path(tmp) / "cards"
        cards.mkdir()
        uids = [f"04{n:06X}" for n in range(1, 9)]
        for uid in uids:
            record = CardRecord("student", "353301", date(2026, 3, 2))
            (cards / f"{uid}.mfd").write_bytes(issue_image(bytes.fromhex(uid), record, 10_000, SAM))
        device = PN532Device(Path(tmp) / "reader0", pace=True, cards=cards).start()
        clock = VirtualClock(datetime(2026, 3, 2, 8, tzinfo=UTC))
        reader: Any = open_reader(f"pn532:{Path(tmp) / 'reader0'}?debounce=0", clock)  # a PN532Reader
        reader.read_tap(0.1)
        samples, floors = [], []
        for i in range(taps):
            while reader.searching_since is None:  # the card comes to a reader waiting for one
                reader.read_tap(0.05)
            device.port.trace = []
            started = time.perf_counter()
            device.place(uids[i % len(uids)])
            tap = None
            while tap is None:
                tap = reader.read_tap(0.5)
            with reader.card_session(tap.uid) as tag:
                debit(tag, SAM, 25, "TPE-BENCH-01", clock.now())
            samples.append(time.perf_counter() - started)
            sent = sum(len(data) for _, data in device.port.trace)
            floors.append(sent * 10 / BAUD)
            device.port.trace = None
            device.remove()
        reader.close()
        device.stop()
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
            "tap_to_debit_confirmed": figures,
            "wire_floor": floor,
            "p99_over_floor": round(ratio, 2),
            "target": TARGET,
            "met": ratio <= TARGET,
        },
    )
    at = f"p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms"
    print(f"card debit, tap -> confirmed (paced {BAUD} baud): {at}")
    print(f"wire time of the bytes it needed: {floor['p50_ms']:.1f} ms; p99 / floor = {ratio:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
