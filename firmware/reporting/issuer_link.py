"""The ``IssuerLink`` port over MQTT: one request out, its answer matched back by id, or nothing in time.

The machine's thread waits in ``ask``; paho's network thread delivers answers through ``receive``
(via the inbox), which never raises: an answer nobody waits for, or one that fails its checks, is
counted and dropped. A link that is down answers ``None`` at once (the caller's offline rule).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from nacl.public import PrivateKey

from firmware.domain import IssuerAnswer
from firmware.identity.signing import Identity, TrustStore
from firmware.reporting import topics
from firmware.reporting.authorisation import answer_id, compose_request, open_answer
from firmware.reporting.wire import WireError

log = logging.getLogger(__name__)
Publish = Callable[[str, str], bool]  # (topic, payload) -> handed to a connected client


class _Waiting:
    def __init__(self, reply: PrivateKey) -> None:
        self.reply = reply
        self.answered = threading.Event()
        self.answer: IssuerAnswer | None = None


class MqttIssuerLink:
    """Signs each request with the machine's key and seals its inside to the issuer's key."""

    def __init__(
        self, machine: str, identity: Identity, issuer_seal: bytes, authorities: TrustStore, publish: Publish
    ) -> None:
        self.machine = machine
        self.identity = identity
        self.issuer_seal = issuer_seal
        self.authorities = authorities
        self.publish = publish
        self.refused = 0  # answers that failed their checks or came for no waiting request
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()

    def ask(self, kind: str, inside: dict[str, Any], timeout_s: float) -> IssuerAnswer | None:
        request_id, wire, reply = compose_request(self.identity, self.machine, kind, inside, self.issuer_seal)
        waiting = _Waiting(reply)
        with self._lock:
            self._waiting[request_id] = waiting
        try:
            if not self.publish(topics.issuer(self.machine, topics.AUTH), wire):
                return None
            waiting.answered.wait(timeout_s)
            return waiting.answer
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def receive(self, raw: bytes) -> None:
        """Paho's thread: match the answer to its request; nothing may escape."""
        try:
            request_id, sealed = answer_id(raw, self.machine, self._issuer)
            with self._lock:
                waiting = self._waiting.get(request_id)
            if waiting is None:
                raise WireError("an answer to no request waiting (late, or not ours)")
            waiting.answer = open_answer(sealed, waiting.reply)
            waiting.answered.set()
        except WireError as exc:
            self.refused += 1
            log.info("ignored an authorisation answer: %s", exc)

    def _issuer(self, envelope: Any) -> Any:
        return self.authorities.verify(envelope, parties=("issuer",))
