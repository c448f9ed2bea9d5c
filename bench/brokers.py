"""The embedded broker (amqtt) against Mosquitto on the same QoS 1 publish workload.

One paho publisher, one paho subscriber, N messages of a realistic sale payload; the figure is
messages/s from the first publish to the last message received. Rounds alternate Mosquitto (the
peer) and the embedded broker, each fresh (bench/common.py ``interleaved``).
Run: .venv/bin/python bench/brokers.py [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.common import ROUNDS, interleaved, merge_results  # noqa: E402
from simulator.servers.broker import EmbeddedBroker  # noqa: E402
from simulator.servers.mosquitto import MosquittoProcess, mosquitto_binary  # noqa: E402

PAYLOAD = json.dumps(
    {
        "machine": "TPE-DAAN-JH-01",
        "seq": 1,
        "txn": "TPE-DAAN-JH-01-0000001",
        "time": "2026-03-02T07:30+08:00",
        "slot": "A1",
        "product": "milk-lowfat-290",
        "price": 25,
        "currency": "TWD",
        "outcome": "vended",
        "pseudonym": "kvyv6cpam3rxxxxxxxxxxxxxxx",
        "profile": "student",
    }
).encode()


def measure(host: str, port: int, messages: int) -> float:
    received = threading.Event()
    count = {"n": 0}

    def on_message(client, userdata, message):
        count["n"] += 1
        if count["n"] >= messages:
            received.set()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub", clean_session=True)
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(host, port)
    sub.subscribe("bench/#", qos=1)
    sub.loop_start()
    subscribed.wait(10)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", clean_session=True)
    pub.max_inflight_messages_set(200)
    pub.connect(host, port)
    pub.loop_start()
    started = time.perf_counter()
    for _ in range(messages):
        pub.publish("bench/sale", PAYLOAD, qos=1)
    ok = received.wait(300)
    elapsed = time.perf_counter() - started
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    if not ok:
        raise RuntimeError(f"only {count['n']} of {messages} messages arrived")
    return messages / elapsed


def mosquitto_rate(messages: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, MosquittoProcess(Path(tmp)) as mosquitto:
        return measure(mosquitto.host, mosquitto.port, messages)


def embedded_rate(messages: int) -> float:
    with EmbeddedBroker() as embedded:
        return measure(embedded.host, embedded.port, messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if mosquitto_binary() is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto): it is the peer here")
    rounds = interleaved(lambda _: mosquitto_rate(args.messages), lambda _: embedded_rate(args.messages), args.rounds)
    merge_results("brokers", {"messages_per_round": args.messages, **rounds})
    print(
        f"embedded amqtt {rounds['work']['median']:8.0f} msgs/s, Mosquitto {rounds['limit']['median']:8.0f} msgs/s "
        f"(QoS 1, one publisher, one subscriber): share median {rounds['ratio']['median']:.2f} "
        f"({rounds['ratio']['min']:.2f}-{rounds['ratio']['max']:.2f})"
    )


if __name__ == "__main__":
    main()
