"""The embedded broker (amqtt) against Mosquitto on the same QoS 1 publish workload.

One paho publisher, one paho subscriber, N messages of a realistic sale payload; the figure is
messages/s from the first publish to the last message received.
Run: .venv/bin/python bench/brokers.py [--messages N]
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

from bench.common import merge_results  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    with EmbeddedBroker() as embedded:
        amqtt_rate = measure(embedded.host, embedded.port, args.messages)
    figures = {"messages": args.messages, "embedded_amqtt_msgs_per_s": round(amqtt_rate, 1)}
    if mosquitto_binary():
        with tempfile.TemporaryDirectory() as tmp, MosquittoProcess(Path(tmp)) as mosquitto:
            mosquitto_rate = measure(mosquitto.host, mosquitto.port, args.messages)
        figures["mosquitto_msgs_per_s"] = round(mosquitto_rate, 1)
        figures["embedded_share_of_mosquitto"] = round(amqtt_rate / mosquitto_rate, 3)
    merge_results("brokers", figures)
    print(f"embedded amqtt : {amqtt_rate:8.0f} msgs/s  ({args.messages} QoS 1 messages, one publisher, one subscriber)")
    if "mosquitto_msgs_per_s" in figures:
        print(
            f"mosquitto      : {figures['mosquitto_msgs_per_s']:8.0f} msgs/s  "
            f"(embedded = {figures['embedded_share_of_mosquitto']:.2f} of Mosquitto)"
        )


if __name__ == "__main__":
    main()
