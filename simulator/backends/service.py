"""What the vendor and issuer backends share: a persistent MQTT session, store-then-ack, clean stop."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from firmware import crashpoints
from firmware.reporting import topics
from firmware.reporting.mqtt import BrokerAddress, make_client
from simulator.backends.store import SqliteReportStore

log = logging.getLogger(__name__)


class BackendService:
    """Subscribes with QoS 1 on a persistent session (the broker queues while we are down where it can)."""

    client_id = "backend"
    subscriptions: tuple[str, ...] = ()
    stream = "vendor"

    def __init__(self, address: BrokerAddress, store: SqliteReportStore, client_id: str | None = None) -> None:
        self.address = address
        self.store = store
        self.client = make_client(address, client_id or self.client_id, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.errors = 0

    def start(self) -> BackendService:
        self.client.connect_async(self.address.host, self.address.port, keepalive=15)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()

    def abandon(self) -> None:
        """Die without a goodbye (crash tests)."""
        self.client.loop_stop()
        self.store.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("broker refused %s: %s", self.client_id, reason_code)
            return
        client.subscribe([(topic, 1) for topic in self.subscriptions])
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        parsed = topics.split(message.topic)
        if parsed is None:
            return
        _, machine, kind = parsed
        try:
            payload = json.loads(message.payload)
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
            self.receive(machine, kind, payload)
        except (ValueError, KeyError, TypeError) as exc:
            self.errors += 1
            log.warning("dropped a malformed %s report from %s: %s", kind, machine, exc)

    def receive(self, machine: str, kind: str, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def ack(self, machine: str, seq: int) -> None:
        self.client.publish(topics.ack(self.stream, machine), json.dumps({"seq": seq}), qos=1)
        crashpoints.reached("backend.ack.after")
