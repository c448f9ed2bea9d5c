"""A backend's way in and out on a RabbitMQ cluster: competing consumers on its party's quorum queue.

The machines publish MQTT; RabbitMQ routes each topic (``/`` as ``.``) on ``amq.topic`` into one
replicated quorum queue per party, declared by the operator (``vending broker cluster``). N
instances of a party's backend consume that queue at once; each delivery is acknowledged to
RabbitMQ only once its reports are stored (or refused as an incident), so an instance killed
mid-batch leaves its unacknowledged deliveries to the others, and the store's unique (machine, seq)
keeps each report exactly once. Acks and answers to the machines go back through ``amq.topic``, which
delivers them to the machines' MQTT sessions.

Login is the party's certificate (SASL EXTERNAL over TLS): no password exists to steal.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from firmware.errors import VendingError
from firmware.reporting.mqtt import BrokerAddress, server_url

log = logging.getLogger(__name__)
EXCHANGE = "amq.topic"
RECONNECT_S = (0.5, 8.0)  # back-off between nodes: first, most


def party_queue(party: str) -> str:
    """The quorum queue a party's backend instances share (declared with the cluster's definitions)."""
    return f"{party}.reports"


def ordered_queue(party: str) -> str:
    """The party's queue for messages that must be applied in order (a machine's status and heartbeats).

    A single-active-consumer quorum queue: one instance at a time reads it, in the order the machine
    sent, and another takes over where it stopped if it dies. Competing consumers on the reports
    queue may apply two messages of one machine in either order, which sequenced reports do not mind
    and an "online" after an "offline" would.
    """
    return f"{party}.ordered"


def routing_key(topic: str) -> str:
    """An MQTT topic or filter as RabbitMQ routes and authorises it (``/`` is ``.``, ``+`` is ``*``)."""
    return topic.replace("/", ".").replace("+", "*")


@dataclass(frozen=True)
class AmqpAddress:
    """Every node of the cluster (tried in order) and the party's certificate."""

    nodes: tuple[tuple[str, int], ...]
    ca_file: str
    cert_file: str
    key_file: str
    vhost: str = "/"

    @classmethod
    def parse(cls, urls: str, ca_file: str | None, cert_file: str | None, key_file: str | None) -> AmqpAddress:
        """``amqps://host:port[,amqps://host:port...]`` with ``--ca/--cert/--cert-key``: TLS and a certificate only."""
        if not (ca_file and cert_file and key_file):
            raise VendingError("--amqp: needs --ca, --cert and --cert-key (the cluster logs parties in by certificate)")
        nodes = []
        for url in (part.strip() for part in urls.split(",")):
            _, host, port = server_url(url, "--amqp", "amqps://host:port (TLS; plain AMQP is refused)", ("amqps",))
            nodes.append((host, port or 5671))
        return cls(tuple(nodes), ca_file, cert_file, key_file)

    def parameters(self) -> list[Any]:
        import pika

        context = ssl.create_default_context(cafile=self.ca_file)
        context.load_cert_chain(self.cert_file, self.key_file)
        return [
            pika.ConnectionParameters(
                host,
                port,
                self.vhost,
                credentials=pika.credentials.ExternalCredentials(),
                ssl_options=pika.SSLOptions(context, host),
                heartbeat=15,
                blocked_connection_timeout=60,
                connection_attempts=1,
                socket_timeout=5,
            )  # fmt: skip
            for host, port in self.nodes
        ]

    def __str__(self) -> str:
        return ",".join(f"amqps://{host}:{port}" for host, port in self.nodes)


Deliver = Callable[[str, bytes, object], None]  # (MQTT topic, payload, receipt to settle it with)


class AmqpLink:
    """Consumes the party's queues on one thread (pika is not thread-safe: other threads hand it callbacks)."""

    def __init__(
        self, address: AmqpAddress, queues: tuple[str, ...], deliver: Deliver, prefetch: int, name: str
    ) -> None:
        self.address = address
        self.queues = queues
        self.deliver = deliver
        self.prefetch = prefetch
        self.name = name
        self.ready = threading.Event()  # consuming: deliveries will arrive
        self.retained: BrokerAddress | None = None  # MQTT, for the few retained pushes (not an AMQP notion)
        self._connection: Any = None
        self._channel: Any = None
        self._generation = 0  # a receipt from an earlier connection is void: the broker requeued it
        self._stopping = threading.Event()
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name=f"{name}-amqp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import pika

        delay = RECONNECT_S[0]
        while not self._stopping.is_set():
            try:
                self._connection = pika.BlockingConnection(self.address.parameters())
                channel = self._connection.channel()
                channel.basic_qos(prefetch_count=self.prefetch)
                self._generation += 1
                generation = self._generation
                tags = [channel.basic_consume(queue, self._consumer(generation)) for queue in self.queues]
                self._channel = channel
                self.ready.set()
                delay = RECONNECT_S[0]
                while not self._stopping.is_set():
                    self._connection.process_data_events(time_limit=0.2)
                if not self._abandoned:  # a clean stop: no more deliveries, then the acks already handed over
                    for tag in tags:
                        channel.basic_cancel(tag)
                    self._connection.process_data_events(time_limit=0)
            except Exception as exc:  # noqa: BLE001 - a lost node: the next one, after a back-off
                self.ready.clear()
                log.warning("%s: AMQP link lost (%s); trying the cluster's nodes again in %.1fs", self.name, exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, RECONNECT_S[1])
        self._close()

    def _consumer(self, generation: int) -> Callable[[Any, Any, Any, bytes], None]:
        """The callback for this connection: each delivery with a receipt naming the connection."""

        def delivered(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            self.deliver(method.routing_key.replace(".", "/"), body, (generation, method.delivery_tag))

        return delivered

    def settle(self, receipts: Iterable[object], stored: bool) -> None:
        """Ack what is durable; requeue what could not be stored (another instance, or this one, retries)."""
        current = [receipt for receipt in receipts if isinstance(receipt, tuple) and receipt[0] == self._generation]
        tags = sorted(int(tag) for _, tag in current)
        if not tags or self._connection is None:
            return

        def settle() -> None:
            for tag in tags:
                if stored:
                    self._channel.basic_ack(tag)
                else:
                    self._channel.basic_nack(tag, requeue=True)

        self._threadsafe(settle)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        """To the machines' MQTT sessions through ``amq.topic``; a retained message through MQTT on every node."""
        if retain:
            self._retain(topic, payload)
            return
        import pika

        body = payload.encode() if isinstance(payload, str) else payload
        properties = pika.BasicProperties(delivery_mode=2 if qos else 1)
        self._threadsafe(lambda: self._channel.basic_publish(EXCHANGE, routing_key(topic), body, properties))

    def _retain(self, topic: str, payload: str | bytes) -> None:
        """RabbitMQ 3.10 keeps retained messages per node: the push goes to each node, so any node has it."""
        from simulator.backends.push import publish

        if self.retained is None:
            log.warning("%s: no MQTT address for a retained push on %s; not sent", self.name, topic)
            return
        text = payload.decode() if isinstance(payload, bytes) else payload
        publish(self.retained, [(topic, text, True)], self.name)

    def _threadsafe(self, work: Callable[[], None]) -> None:
        connection = self._connection
        if connection is None:
            return  # no link: what was to be acked is requeued by the broker; an ack to a machine is resent later
        try:
            connection.add_callback_threadsafe(work)
        except Exception:  # noqa: BLE001 - a closed connection: same as no link
            log.debug("%s: AMQP link closed; dropped a settle or publish", self.name)

    def stop(self) -> None:
        """Finish: stop consuming, let the settles already handed over run, close."""
        self._stopping.set()
        self._thread.join(timeout=15)

    def abandon(self) -> None:
        """A crash: the connection drops with deliveries unacknowledged; the broker hands them to the others."""
        connection = self._connection
        self._abandoned = True
        self._stopping.set()
        if connection is not None:
            try:
                connection._impl._transport._sock.close()  # noqa: SLF001 - no goodbye, as a killed process
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._thread.join(timeout=15)

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - already gone
                pass
