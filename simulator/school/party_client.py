"""The school's end of the party requests (simulator/backends/requests.py) over MQTT.

A request goes out signed; its answer counts only if it carries the request's id and the asked
party's signature. No answer within the wait is asked once more with the same id (the embedded
broker can drop a QoS 1 message under load; answering twice is harmless: access reads, erasure of
something already erased finds nothing), then reported as the party not answering.
"""

from __future__ import annotations

import queue
import secrets
import threading
from types import TracebackType
from typing import Any, Self

from firmware.errors import VendingError
from firmware.identity.signing import Identity, PublicKey, TrustStore
from firmware.reporting.mqtt import BrokerAddress, make_client, reachable
from firmware.reporting.wire import WireError
from simulator.backends.requests import (
    PartyRequest,
    RequestRefused,
    answer_topic,
    compose,
    read_answer,
    request_topic,
)

ATTEMPTS = 2


class PartyUnavailable(VendingError):
    """A party did not answer, or refused."""


class PartyClient:
    def __init__(
        self, address: BrokerAddress, identity: Identity, parties: dict[str, PublicKey], wait: float = 10.0
    ) -> None:
        self.identity = identity
        self.wait = wait
        self._trust = {party: TrustStore([key]) for party, key in parties.items()}
        self._answers: dict[str, queue.Queue[bytes]] = {}
        self._lock = threading.Lock()
        self._client = make_client(address, f"school-requests-{secrets.token_hex(4)}", persistent=False)
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._address = address

    def __enter__(self) -> Self:
        reachable(self._address)  # a dead broker is named at once, not after the subscription wait
        self._client.connect(*self._address.endpoint, keepalive=30)
        self._client.loop_start()
        self._client.subscribe([(answer_topic(party), 1) for party in self._trust])
        if not self._subscribed.wait(10):
            self.__exit__(None, None, None)
            raise PartyUnavailable(f"the broker at {self._address} did not confirm the school's subscription")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            for waiting in self._answers.values():
                waiting.put(bytes(message.payload))

    def ask(self, request: PartyRequest) -> dict[str, Any]:
        """The party's checked answer to ``request``; ``PartyUnavailable`` when it refuses or stays silent."""
        trust = self._trust[request.party]
        inbox: queue.Queue[bytes] = queue.Queue()
        with self._lock:
            self._answers[request.id] = inbox
        try:
            for _ in range(ATTEMPTS):
                wire = compose(self.identity, request.document())
                self._client.publish(request_topic(request.party), wire, qos=1)
                answer = self._await(inbox, request, trust)
                if answer is not None:
                    return answer
        finally:
            with self._lock:
                del self._answers[request.id]
        raise PartyUnavailable(
            f"the {request.party} backend did not answer within {self.wait:g} s "
            f"(is it running with the school's public key, --school-key?)"
        )

    def _await(self, inbox: queue.Queue[bytes], request: PartyRequest, trust: TrustStore) -> dict[str, Any] | None:
        while True:
            try:
                raw = inbox.get(timeout=self.wait)
            except queue.Empty:
                return None
            try:
                return read_answer(raw, request.id, lambda envelope: trust.verify(envelope))
            except RequestRefused as exc:
                raise PartyUnavailable(f"the {request.party} {exc}") from None
            except WireError:
                continue  # another request's answer, or noise: keep waiting for ours
