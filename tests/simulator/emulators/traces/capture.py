"""Record what libnfc's nfc-list and nfcpy's pn532 driver say to the emulated PN532, byte for byte.

Run by hand when the emulator or a host stack changes (needs libnfc-bin and nfcpy):
    .venv/bin/python -m tests.simulator.emulators.traces.capture
and commit the .json files it writes beside itself; ``test_traces.py`` replays them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from simulator.emulators.devices import PN532Device

HERE = Path(__file__).resolve().parent
UID = "04A1B2C3D4E5F6"


def record(name: str, session: Callable[[PN532Device], None]) -> None:
    device = PN532Device().start()
    device.place(UID)
    device.port.trace = []
    try:
        session(device)
    finally:
        device.stop()
    events = [{"from": who, "hex": data.hex()} for who, data in device.port.trace]
    (HERE / f"{name}.json").write_text(json.dumps({"uid": UID, "events": events}, indent=1) + "\n")


def nfc_list(device: PN532Device) -> None:
    env = dict(os.environ, LIBNFC_DEVICE=f"pn532_uart:{device.path}")
    subprocess.run(["nfc-list"], env=env, check=True, capture_output=True, timeout=30)


def nfcpy(device: PN532Device) -> None:
    import nfc
    import nfc.clf.pn532
    import nfc.clf.transport

    frontend = nfc.ContactlessFrontend()
    frontend.device = nfc.clf.pn532.init(nfc.clf.transport.TTY(device.path))
    target = frontend.sense(nfc.clf.RemoteTarget("106A"))
    assert target is not None and target.sdd_res.hex().upper() == UID
    frontend.close()


if __name__ == "__main__":
    record("libnfc-nfc-list", nfc_list)
    record("nfcpy-sense", nfcpy)
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.json"))))
