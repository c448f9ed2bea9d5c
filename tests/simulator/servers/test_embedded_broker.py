"""The embedded broker (amqtt) hands a session to the client that takes it over, and keeps it there.

A backend that froze (or whose host vanished) leaves a half-open connection; its replacement connects
with the same client id and a persistent session. amqtt 0.12.1 takes the session over, but the old
connection's clean-up then marks the shared session disconnected, and its session monitor (once a
second) tears down what it takes for an abandoned session: the new connection's handler and every
subscription. The replacement was cut off, or, when the monitor came mid-connect, left connected and
deaf for good -- an issuer that never heard a machine's debits again (a CI run on 2026-12-06).

And a persistent session keeps what is published while its client is away, as Mosquitto does: amqtt
queued nothing for a client it let in as anonymous (every client, behind its open door), and what it
did queue it delivered flagged retained, which a machine ignores on its command topics -- a refund
the operator sent during an outage never reached the machine.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.reporting.mqtt import BrokerAddress, make_client
from simulator.servers.broker import EmbeddedBroker
from simulator.servers.mosquitto import MosquittoProcess
from tests.support.reporting import require_mosquitto
from tests.support.waiting import eventually

MONITOR_PASSES_S = 3.0  # amqtt's session monitor runs once a second: three of its passes


def connected_client(address: BrokerAddress, client_id: str, persistent: bool, inbox: queue.Queue[bytes] | None):
    """A paho client, connected, subscribed to ``t/#`` at QoS 1 when it has an inbox; it counts its drops."""
    client = make_client(address, client_id, persistent=persistent)
    client.drops = 0
    subscribed: queue.Queue[bool] = queue.Queue()

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if inbox is not None:
            c.subscribe("t/#", qos=1)
        else:
            subscribed.put(True)

    def on_disconnect(c, userdata, flags, reason_code, properties) -> None:
        client.drops += 1

    client.on_connect = on_connect
    client.on_subscribe = lambda c, u, mid, codes, p: subscribed.put(True)
    client.on_disconnect = on_disconnect
    if inbox is not None:
        client.on_message = lambda c, u, message: inbox.put(message.payload)
    client.connect(address.host, address.port)
    client.loop_start()
    assert subscribed.get(timeout=10)
    return client


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def address(request: pytest.FixtureRequest, tmp_path: Path, closing) -> Iterator[BrokerAddress]:
    """The embedded broker, and the reference one it is held to (Mosquitto)."""
    if request.param == "embedded":
        with EmbeddedBroker() as broker:
            yield BrokerAddress(broker.host, broker.port)
        return
    require_mosquitto()
    mosquitto = closing(MosquittoProcess(tmp_path / "mosquitto").start())
    yield BrokerAddress(mosquitto.host, mosquitto.port)


def test_a_client_that_takes_over_a_persistent_session_keeps_it_and_hears_what_is_published(
    address: BrokerAddress,
) -> None:
    takes_over_and_hears(address)


def takes_over_and_hears(address: BrokerAddress) -> None:
    frozen = connected_client(address, "issuer-backend", persistent=True, inbox=queue.Queue())
    frozen.loop_stop()  # the process froze: its socket stays open, nothing answers on it

    heard: queue.Queue[bytes] = queue.Queue()
    replacement = connected_client(address, "issuer-backend", persistent=True, inbox=heard)
    publisher = connected_client(address, "machine", persistent=False, inbox=None)
    try:
        sent = 0
        deadline = time.monotonic() + MONITOR_PASSES_S
        while time.monotonic() < deadline:
            sent += 1
            publisher.publish("t/debit", str(sent).encode(), qos=1).wait_for_publish(5)
            eventually(lambda: not heard.empty(), 10, what=f"the replacement hearing message {sent}")
            assert heard.get_nowait() == str(sent).encode()
        assert replacement.drops == 0, "the broker dropped the client that took the session over"
    finally:
        for client in (replacement, publisher):
            client.disconnect()
            client.loop_stop()
        frozen.socket().close()


def test_a_persistent_session_gets_what_was_published_while_it_was_away_once_and_not_as_retained(
    address: BrokerAddress,
) -> None:
    hears_what_was_sent_while_away(address)


def hears_what_was_sent_while_away(address: BrokerAddress) -> None:
    heard: queue.Queue[tuple[bytes, bool]] = queue.Queue()
    machine = connected_client(address, "machine-T1", persistent=True, inbox=queue.Queue())
    machine.disconnect()  # its link goes; its session stays at the broker
    machine.loop_stop()
    operator = connected_client(address, "vendor-ops", persistent=False, inbox=None)
    operator.publish("t/cmd/refund", b"refund 1", qos=1).wait_for_publish(5)
    operator.disconnect()
    operator.loop_stop()

    back = make_client(address, "machine-T1", persistent=True)
    back.on_message = lambda c, u, message: heard.put((message.payload, bool(message.retain)))
    back.connect(address.host, address.port)
    back.loop_start()
    try:
        assert heard.get(timeout=10) == (b"refund 1", False), "queued for the session, delivered as a plain message"
        time.sleep(0.5)
        assert heard.empty(), "delivered once"
    finally:
        back.disconnect()
        back.loop_stop()
