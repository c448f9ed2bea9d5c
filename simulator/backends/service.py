"""What the vendor and issuer backends share: a persistent MQTT session, batched store-then-ack, clean stop.

paho's network thread only parses and queues; one writer thread stores a batch in one transaction
and then acks each machine once with the highest contiguous seq it now holds durably.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any, Self

from firmware import crashpoints
from firmware.reporting import topics
from firmware.reporting.mqtt import BrokerAddress, make_client
from firmware.reporting.wire import WireError, parse_object, sequence
from simulator.backends.store import Report, SqliteReportStore

log = logging.getLogger(__name__)
BATCH = 2000
MAX_REPORT_BYTES = 64 * 1024  # a report is a few hundred bytes; a sealed settlement for a big school a few KiB


class BackendService:
    """Subscribes with QoS 1 on a persistent session (the broker queues while we are down where it can)."""

    client_id = "backend"
    subscriptions: tuple[str, ...] = ()
    stream = "vendor"

    def __init__(
        self,
        address: BrokerAddress,
        store: SqliteReportStore,
        client_id: str | None = None,
        shared_group: str | None = None,
    ) -> None:
        self.address = address
        self.store = store
        self.shared_group = shared_group
        self.client = make_client(address, client_id or self.client_id, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.errors = 0
        self._inbox: queue.Queue[tuple[str, str, dict[str, Any]] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name=f"{self.client_id}-writer", daemon=True)

    def start(self) -> Self:
        self._writer.start()
        self.client.connect_async(self.address.host, self.address.port, keepalive=15)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._inbox.put(None)
        self._writer.join(timeout=30)
        self.store.close()

    def abandon(self) -> None:
        """Die without a goodbye (crash tests): unstored messages are simply gone, as in a crash."""
        self.client.loop_stop()
        self._inbox.put(None)
        self._writer.join(timeout=30)
        self.store.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("broker refused %s: %s", self.client_id, reason_code)
            return
        client.subscribe([(self.subscription(topic), 1) for topic in self.subscriptions])
        self.connected.set()

    def subscription(self, topic: str) -> str:
        """The topic filter, shared when the backend runs in a ``$share`` group.

        With a group, several backend processes share the load (MQTT 5 / Mosquitto / EMQX / HiveMQ
        ``$share``); exactly-once still holds because the store dedups on (machine, seq).
        """
        return f"$share/{self.shared_group}/{topic}" if self.shared_group else topic

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Paho's thread: parse and queue only; an exception here would end the network loop."""
        try:
            parsed = topics.split(message.topic)
            if parsed is None:
                return
            _, machine, kind = parsed
            payload = parse_object(bytes(message.payload[: MAX_REPORT_BYTES + 1]), MAX_REPORT_BYTES)
        except WireError as exc:
            self.errors += 1
            log.warning("dropped a malformed report on %s: %s", message.topic, exc)
            return
        except Exception:  # noqa: BLE001 - one bad message never stops the backend
            self.errors += 1
            log.exception("dropped a report on %s that could not be parsed", message.topic)
            return
        self._inbox.put((machine, kind, payload))

    def _write_loop(self) -> None:
        """The writer thread: a batch that fails is logged and left unacked (the machines resend it)."""
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._inbox.put(None)
                    break
                batch.append(item)
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 - nothing was acked, so nothing is lost; keep serving
                self.errors += 1
                log.exception("a batch of %d reports could not be stored; left unacked for resending", len(batch))

    def _write(self, batch: list[tuple[str, str, dict[str, Any]]]) -> None:
        reports: list[Report] = []
        for machine, kind, payload in batch:
            try:
                report = self.report(machine, kind, payload)
            except Exception as exc:  # noqa: BLE001 - a bad report is dropped alone; the rest of the batch is stored
                self.errors += 1
                log.warning("dropped a malformed %s report from %s: %s", kind, machine, exc)
                continue
            if report is not None:
                reports.append(report)
        if reports:
            for machine, seq in self.store.store_many(reports).items():
                self.ack(machine, seq)

    def receive(self, machine: str, kind: str, payload: dict[str, Any]) -> None:
        """Handle one report synchronously (tests replay duplicates through here)."""
        self._write([(machine, kind, payload)])

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        """Turn a message into a sequenced report to store, or handle it and return None."""
        raise NotImplementedError

    def ack(self, machine: str, seq: int) -> None:
        self.client.publish(topics.ack(self.stream, machine), json.dumps({"seq": seq}), qos=1)
        crashpoints.reached("backend.ack.after")


def sequence_number(payload: dict[str, Any]) -> int:
    return sequence(payload.get("seq"), minimum=1)
