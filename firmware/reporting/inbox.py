"""What arrives for one machine: receivers' acks for the publisher, remote commands for the node's loop.

The publisher owns the MQTT connection (one client id per machine) and publishes; this module only
receives. Paho's network thread calls ``on_message``: it parses the topic with ``topics``, checks an
ack's signature against the party that receives that stream, and queues. Nothing here touches the
database or the controller, so one bad message costs a log line, never the link.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.domain import STREAMS
from firmware.identity.signing import TrustStore
from firmware.reporting import topics
from firmware.reporting.authorisation import MAX_AUTH_BYTES
from firmware.reporting.signed import ACK_PARTY, MAX_ACK_BYTES, read_ack
from firmware.reporting.wire import WireError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundCommand:
    """A command as it came off the wire: not yet verified (the command gate does that on the loop's thread)."""

    name: str
    payload: bytes
    retained: bool = False


class Inbox:
    """Acks and commands for ``machine``, queued for their owners (the publisher, the node's loop)."""

    def __init__(self, machine: str, authorities: TrustStore) -> None:
        self.machine = machine
        self.authorities = authorities
        self.commands: queue.Queue[InboundCommand] = queue.Queue()
        self.acks: queue.Queue[tuple[str, int]] = queue.Queue()
        self.on_ack: Callable[[], None] = lambda: None  # the publisher's wake-up
        self.on_auth_answer: Callable[[bytes], None] | None = None  # an account machine's issuer link
        # an authority's pushes this machine takes (the issuer's lost-card list, the school's controls):
        # topic -> the most bytes one may have; queued as they came, checked on the loop's thread
        self.push_topics: dict[str, int] = {}
        self.pushes: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.refused_acks = 0
        self.handler_errors = 0

    def subscriptions(self) -> list[tuple[str, int]]:
        """The topics this machine listens on, with their QoS."""
        listening = [
            *((topics.ack(stream, self.machine), 1) for stream in STREAMS),
            (topics.command(self.machine, "+"), 1),
        ]
        if self.on_auth_answer is not None:
            listening.append((topics.issuer(self.machine, topics.AUTH_ANSWER), 0))
        return listening + [(topic, 1) for topic in self.push_topics]

    def on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Paho's thread: an exception here would end the network loop, so nothing may escape."""
        try:
            self.receive(message.topic, message.payload, bool(message.retain))
        except Exception:  # noqa: BLE001 - one bad message never stops the machine's link
            self.handler_errors += 1
            log.exception("dropped a message on %s that its handler could not take", message.topic)

    def receive(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Only the first bytes a message may legitimately have are copied: a 100 MB one costs no 100 MB copy."""
        if self.on_auth_answer is not None and topic == topics.issuer(self.machine, topics.AUTH_ANSWER):
            self.on_auth_answer(bytes(payload[: MAX_AUTH_BYTES + 1]))
            return
        if (most := self.push_topics.get(topic)) is not None:
            self.pushes.put((topic, bytes(payload[: most + 1])))
            return
        stream = topics.ack_stream(topic, self.machine)
        if stream is not None:
            try:
                seq = read_ack(bytes(payload[: MAX_ACK_BYTES + 1]), self.machine, self._ack_verifier(stream))
            except WireError as exc:
                self.refused_acks += 1
                log.warning("ignored an ack on %s: %s", topic, exc)
                return
            self.acks.put((stream, seq))
            self.on_ack()
            return
        name = topics.command_name(topic, self.machine)
        if name is not None:
            self.commands.put(InboundCommand(name, bytes(payload[: topics.MAX_COMMAND_BYTES + 1]), retained))

    def _ack_verifier(self, stream: str) -> Callable[[Any], Any]:
        return lambda envelope: self.authorities.verify(envelope, parties=(ACK_PARTY[stream],))
