"""Machine outbox -> vendor backend database on Mosquitto, against the raw rate mosquitto_sub drains them.

1. A machine sells N times with the broker unreachable, so N sale reports wait in its outbox.
2. Outbox path: the vendor backend is up; the publisher starts; the clock runs until the backend
   holds all N durably and has acked them (the outbox is empty).
3. Raw path: the same N payloads are queued at Mosquitto for a persistent `mosquitto_sub` session
   while it is away; the clock runs from its start until it has printed N messages.
The ratio (outbox path / raw drain) is the figure of merit; target >= 0.5.
Run: .venv/bin/python bench/outbox_throughput.py [--messages N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.common import CARDS, demo_machine, merge_results  # noqa: E402
from firmware.domain import CardTap  # noqa: E402
from firmware.reporting.mqtt import BrokerAddress  # noqa: E402
from firmware.reporting.publisher import OutboxPublisher  # noqa: E402
from simulator.backends.vendor import VendorBackend  # noqa: E402
from simulator.dev_keys import DevKeys  # noqa: E402
from simulator.scenarios.reporting_world import ReportingWorld  # noqa: E402
from simulator.servers.mosquitto import MosquittoProcess  # noqa: E402

SLOTS = ["A1", "A2", "A3", "B1", "B2", "D1", "E1", "E2"]


def fill_outbox(directory: Path, messages: int) -> tuple[Path, str, list[bytes]]:
    world = ReportingWorld(directory / "world")
    machine, clock, _ = demo_machine(directory / "machine", reporter=world.reporter_factory)
    controller = machine.controller
    i = 0
    outbox = machine.books.journal.outbox
    while outbox.depth() < messages:
        if i % 90 == 89:
            controller.restock({slot: 100 for slot in SLOTS})
        controller.dispatch("select", SLOTS[i % len(SLOTS)])
        controller.present(CardTap(CARDS[i % len(CARDS)], "virtual", clock.now()))
        i += 1
    payloads = [payload.encode() for _, payload in outbox.payloads()[:messages]]
    outbox.keep_first(messages)
    machine.db.close()
    return directory / "machine" / "machine.db", controller.config.id, payloads


def outbox_path(db: Path, machine_id: str, address: BrokerAddress, workdir: Path, messages: int) -> float:
    from datetime import datetime

    from simulator.hardware.virtual import VirtualClock

    keys = DevKeys(workdir / "keys")
    backend = VendorBackend(address, workdir / "vendor.db", keys.vendor, keys.enrolment).start()
    backend.subscribed.wait(15)
    clock = VirtualClock(datetime.fromisoformat("2026-03-02T18:00:00+08:00"))
    started = time.perf_counter()
    publisher = OutboxPublisher(
        db, machine_id, address, clock, keys.machine(machine_id), keys.trust.authorities, heartbeat_s=3600
    ).start()
    if not publisher.flush(600):
        raise RuntimeError(f"{publisher.depth()} reports still in the outbox")
    elapsed = time.perf_counter() - started
    stored = backend.store.count()
    publisher.stop()
    backend.stop()
    if stored != messages:
        raise RuntimeError(f"backend holds {stored} of {messages}")
    return messages / elapsed


def queue_for(address: BrokerAddress, payloads: list[bytes], client_id: str) -> None:
    """Publish ``payloads`` (QoS 1) so the broker queues them for an absent persistent subscriber."""
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    pub.max_inflight_messages_set(500)
    pub.connect(address.host, address.port)
    pub.loop_start()
    info = None
    for payload in payloads:
        info = pub.publish("bench/sale", payload, qos=1)
    assert info is not None
    info.wait_for_publish(120)
    pub.disconnect()
    pub.loop_stop()


def raw_drain(address: BrokerAddress, payloads: list[bytes]) -> float:
    sub = [
        "mosquitto_sub",
        "-h",
        address.host,
        "-p",
        str(address.port),
        "-q",
        "1",
        "-c",
        "-i",
        "drainer",
        "-t",
        "bench/#",
    ]
    subprocess.run([*sub, "-E"], check=True, timeout=30)  # create the persistent session, then leave
    queue_for(address, payloads, "bench-filler")
    started = time.perf_counter()
    subprocess.run([*sub, "-C", str(len(payloads))], check=True, timeout=600, stdout=subprocess.DEVNULL)
    return len(payloads) / (time.perf_counter() - started)


def paho_drain(address: BrokerAddress, payloads: list[bytes]) -> float:
    """The same queued-session drain with a bare paho subscriber: the Python client's own ceiling."""
    import threading

    def client(client_id: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.connect(address.host, address.port)
        return c

    first = client("paho-drainer")
    first.subscribe("bench/#", qos=1)
    first.loop_start()
    time.sleep(0.5)  # the SUBACK; then leave so the broker queues for us
    first.disconnect()
    first.loop_stop()
    queue_for(address, payloads, "bench-filler-2")
    done, count = threading.Event(), [0]

    def on_message(c, u, m):
        count[0] += 1
        if count[0] >= len(payloads):
            done.set()

    started = time.perf_counter()
    drainer = client("paho-drainer")
    drainer.on_message = on_message
    drainer.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - started
    drainer.disconnect()
    drainer.loop_stop()
    return count[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        directory = Path(tmp)
        db, machine_id, payloads = fill_outbox(directory, args.messages)
        with MosquittoProcess(directory / "mosquitto") as mosquitto:
            address = BrokerAddress(mosquitto.host, mosquitto.port)
            outbox_rate = outbox_path(db, machine_id, address, directory, args.messages)
            raw_rate = raw_drain(address, payloads)
            paho_rate = paho_drain(address, payloads)
    ratio = outbox_rate / raw_rate
    merge_results(
        "outbox_to_backend",
        {
            "messages": args.messages,
            "outbox_to_backend_msgs_per_s": round(outbox_rate, 1),
            "mosquitto_sub_drain_msgs_per_s": round(raw_rate, 1),
            "paho_subscriber_drain_msgs_per_s": round(paho_rate, 1),
            "ratio": round(ratio, 3),
            "share_of_paho_drain": round(outbox_rate / paho_rate, 3),
            "target_ratio_min": 0.5,
        },
    )
    print(f"outbox -> backend DB (QoS 1, stored durably, acked, deleted): {outbox_rate:8.0f} msgs/s")
    print(f"mosquitto_sub draining the same messages from a queued session: {raw_rate:8.0f} msgs/s")
    print(f"a bare paho subscriber draining the same queued session:    {paho_rate:8.0f} msgs/s")
    print(f"ratio to mosquitto_sub {ratio:.2f} (target >= 0.5); to the paho client alone {outbox_rate / paho_rate:.2f}")


if __name__ == "__main__":
    main()
