"""Machine outbox -> vendor backend database on Mosquitto, against mosquitto_sub draining the same reports.

1. A machine sells until N sale reports wait in its outbox (sold while the broker was unreachable).
2. Limit (the old design's physical floor): the same N reports, each signed and sent as its own QoS 1
   message as the machine used to, are queued at Mosquitto for a persistent `mosquitto_sub` session
   while it is away; the clock runs from its start until it has printed all N.
3. Work: a copy of that outbox, the vendor backend in a process of its own (as deployed), the
   publisher starts, and the clock runs until the backend holds all N durably and acked them and the
   machine deleted them. The publisher batches and signs each batch once.
Rounds alternate limit and work on a fresh Mosquitto each (bench/common.py ``interleaved``).
Run: .venv/bin/python bench/outbox_throughput.py [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.common import (  # noqa: E402
    ROUNDS,
    backends_elsewhere,
    demo_link,
    demo_machine,
    interleaved,
    merge_results,
    open_demo,
    process_cpu_s,
    spread,
    stored,
    vend_once,
)
from firmware.reporting.mqtt import BrokerAddress  # noqa: E402
from firmware.reporting.signed import sign_text  # noqa: E402
from simulator.dev_keys import DevKeys  # noqa: E402
from simulator.servers.mosquitto import MosquittoProcess, mosquitto_binary  # noqa: E402


def fill_outbox(directory: Path, messages: int) -> tuple[Path, list[bytes]]:
    """A machine state dir with ``messages`` sale reports waiting, and the same reports signed one by one."""
    keys = DevKeys(directory / "keys")
    machine, clock, _ = demo_machine(directory / "machine", demo_link(keys))
    sold = 0
    outbox = machine.books.journal.outbox
    while outbox.depth() < messages:
        vend_once(machine, clock, sold)
        sold += 1
    outbox.keep_first(messages)
    identity = keys.machine(machine.machine_id)
    signed = [sign_text(identity, payload).encode() for _, payload in outbox.payloads()]
    machine.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    machine.close()
    return directory / "machine", signed


PARTS = ("publisher", "broker", "backend")  # the processes a report crosses, each one's CPU measured


def outbox_path(
    state: Path, keys_dir: Path, workdir: Path, messages: int, cpu: dict[str, list[float]], sent: list[int]
) -> float:
    """Reports/s from publisher start until the backend stored and acked all of them.

    Appends to ``cpu[part]`` the CPU seconds each of ``PARTS`` used over the same span: the machine's
    publisher (this process, which runs nothing else meanwhile), Mosquitto and the vendor backend, each
    read from /proc; together, what a report costs beside the time per message the limit leaves. And
    to ``sent`` the MQTT messages the publisher needed for them (batches, and the reports that go alone).
    """
    with MosquittoProcess(workdir / "mosquitto") as mosquitto:
        address = BrokerAddress(mosquitto.host, mosquitto.port)
        copy = shutil.copytree(state, workdir / "machine")
        keys = DevKeys(keys_dir)
        with backends_elsewhere(str(address), keys_dir, workdir) as backends:
            link = demo_link(keys, address, heartbeat_s=3600)
            machine, _, _ = open_demo(copy, link, at="2026-03-02T18:00:00+08:00")  # the evening after the sales
            pids = {"publisher": os.getpid(), "broker": mosquitto.pid, "backend": backends.vendor_pid}
            before = {part: process_cpu_s(pid) for part, pid in pids.items()}
            started = time.perf_counter()
            publisher = machine.connect()
            drained = publisher.flush(600)
            elapsed = time.perf_counter() - started
            sent.append(publisher.published)
            for part, pid in pids.items():
                cpu[part].append(process_cpu_s(pid) - before[part])
            machine.close()
            held = stored(backends.vendor_db)
    if not drained or held != messages:
        raise RuntimeError(f"backend holds {held} of {messages}; outbox drained: {drained}")
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


def raw_drain(workdir: Path, payloads: list[bytes]) -> float:
    """Messages/s at which the C client drains the reports sent one per message from a queued session."""
    with MosquittoProcess(workdir / "mosquitto-raw") as mosquitto:
        address = BrokerAddress(mosquitto.host, mosquitto.port)
        sub = ["mosquitto_sub", "-h", address.host, "-p", str(address.port), "-q", "1", "-c", "-i", "drainer"]
        sub += ["-t", "bench/#"]
        subprocess.run([*sub, "-E"], check=True, timeout=30)  # create the persistent session, then leave
        queue_for(address, payloads, "bench-filler")
        started = time.perf_counter()
        subprocess.run([*sub, "-C", str(len(payloads))], check=True, timeout=600, stdout=subprocess.DEVNULL)
        return len(payloads) / (time.perf_counter() - started)


def mosquitto_version() -> str:
    binary = mosquitto_binary()
    if binary is None:
        return "not installed"
    shown = subprocess.run([str(binary), "-h"], capture_output=True, text=True).stdout.splitlines()
    return shown[0].strip() if shown else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        directory = Path(tmp)
        state, payloads = fill_outbox(directory, args.messages)
        cpu: dict[str, list[float]] = {part: [] for part in PARTS}
        sent: list[int] = []
        rounds = interleaved(
            lambda number: raw_drain(directory / f"raw-{number}", payloads),
            lambda number: outbox_path(
                state, directory / "keys", directory / f"work-{number}", args.messages, cpu, sent
            ),
            args.rounds,
        )
    merge_results(
        "outbox_to_backend",
        {
            "messages": args.messages,
            "report_bytes_signed": round(sum(map(len, payloads)) / len(payloads)),
            "mosquitto": mosquitto_version(),
            **rounds,
            # each process's CPU per report while draining; the limit allows 1e6 / msgs/s µs per message
            **{f"{part}_cpu_us_per_report": spread([s * 1e6 / args.messages for s in cpu[part]], 1) for part in PARTS},
            "mqtt_messages_sent": spread([float(n) for n in sent], 0),  # the heartbeat and status included
            "cpu_tick_us_per_report": round(1e6 / os.sysconf("SC_CLK_TCK") / args.messages, 2),  # /proc's resolution
            "total_cpu_us_per_report": spread(
                [sum(cpu[p][n] for p in PARTS) * 1e6 / args.messages for n in range(len(cpu["backend"]))], 1
            ),
            "target_ratio_min": 1.0,
        },
    )
    ratio = rounds["ratio"]
    print(
        f"outbox -> backend DB (batched, signed once per batch, stored, acked, deleted): "
        f"{rounds['work']['median']:8.0f} reports/s (median of {args.rounds})"
    )
    print(f"mosquitto_sub draining the same reports sent one per message:  {rounds['limit']['median']:8.0f} msgs/s")
    print(f"ratio median {ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f}) (target >= 1.0)")


if __name__ == "__main__":
    main()
