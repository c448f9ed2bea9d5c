"""What the vendor and issuer backends share: a persistent MQTT session, batched store-then-ack, clean stop.

paho's network thread only verifies and queues; one writer thread stores a batch in one transaction
and then acks each machine once, signed, with the highest contiguous seq it now holds durably.
Nothing is stored that the enrolled machine did not sign: an unknown machine, a bad signature or a
second, different report at a stored seq is refused, never acked, and written to ``incidents``.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple, Self

from paho.mqtt.client import topic_matches_sub

from firmware import crashpoints
from firmware.identity.keyset import Enrolment
from firmware.identity.signing import Identity, PublicKey, TrustStore
from firmware.reporting import topics
from firmware.reporting.batches import BATCH_KIND, MAX_BATCH_BYTES, open_batch
from firmware.reporting.mqtt import BrokerAddress, drop, make_client
from firmware.reporting.signed import compose_ack, open_signed
from firmware.reporting.supervised import SupervisedThread
from firmware.reporting.wire import WireError, sequence
from simulator.backends import contract
from simulator.backends.amqp import AmqpAddress, AmqpLink, ordered_queue, party_queue
from simulator.backends.requests import PartyRequest, answer_topic, compose, read_request, request_topic
from simulator.backends.store import Report, SqliteReportStore

log = logging.getLogger(__name__)
BATCH = 2000
MAX_REPORT_BYTES = 64 * 1024  # a report is a few hundred bytes; a sealed settlement for a big school a few KiB
MAX_MESSAGE_BYTES = max(MAX_REPORT_BYTES, MAX_BATCH_BYTES)
INCIDENTS_PER_MINUTE = 60  # a flood of forgeries is counted, not written row by row until the disk fills


class Inbound(NamedTuple):
    """A verified message waiting for the writer thread."""

    machine: str
    kind: str
    payload: dict[str, Any]
    digest: str
    signature: str
    manifest: str = ""  # the signed batch manifest it came in (empty for a report sent alone)
    text: str = ""  # the payload exactly as signed (stored as is: no re-encoding, and it hashes to ``digest``)
    receipt: object = None  # how the message it came in is settled with the broker once stored (AMQP only)


Call = object  # an item the writer answers on its own (PartyRequest; a subclass's own, e.g. an authorisation)


class BackendService:
    """Subscribes with QoS 1 on a persistent session (the broker queues while we are down where it can)."""

    client_id = "backend"
    subscriptions: tuple[str, ...] = ()
    ordered: tuple[str, ...] = ()  # of those, what must be applied in the order sent (on a cluster: one reader)
    stream = "vendor"

    def __init__(
        self,
        address: BrokerAddress,
        store: SqliteReportStore,
        identity: Identity,
        enrolment: Enrolment,
        client_id: str | None = None,
        shared_group: str | None = None,
        school: PublicKey | None = None,
        persistent: bool = True,
    ) -> None:
        self.address = address
        self.school = TrustStore([school]) if school is not None and school.party == "school" else None
        self.store = store
        self.identity = identity
        self.enrolment = enrolment
        self.shared_group = shared_group
        self.client_id = client_id or self.client_id
        self.oversize = 0  # messages over MAX_MESSAGE_BYTES, dropped before they were read
        self.misdelivered = 0  # messages on topics this backend never subscribed to
        self.client = make_client(address, self.client_id, persistent=persistent)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker confirmed the subscriptions: messages will arrive
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.errors = 0
        self.incidents = 0  # refused as hostile: every one is logged, the first INCIDENTS_PER_MINUTE stored
        self._incident_minute = (0, 0)  # (minute, rows written in it)
        # one item per MQTT message: a batch's reports stay together, so they are stored in one transaction;
        # anything else is a call answered on its own, in arrival order (a school's request, an authorisation)
        self._inbox: queue.Queue[list[Inbound] | Call | None] = queue.Queue()
        self._writer = SupervisedThread(self._write_loop, f"{self.client_id}-writer")
        self.link: AmqpLink | None = None

    def use_amqp(self, address: AmqpAddress) -> Self:
        """Consume the party's quorum queue on a RabbitMQ cluster (competing consumers) instead of MQTT."""
        queues = (party_queue(self.stream), *((ordered_queue(self.stream),) if self.ordered else ()))
        link = AmqpLink(address, queues, self._delivered, BATCH, self.client_id)
        link.retained = self.address  # the party's MQTT address, for its retained pushes
        self.client = self.link = link
        self.connected = self.subscribed = link.ready
        return self

    def start(self) -> Self:
        contract.prepare(topic.rsplit("/", 1)[-1] for topic in self.subscriptions)
        self._writer.start()
        if self.link is not None:
            self.link.start()
            return self
        self.client.connect_async(*self.address.endpoint, keepalive=15)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self._writer.stop()
        if self.link is None:
            self.client.disconnect()
            self.client.loop_stop()
        self._inbox.put(None)
        self._writer.join(timeout=30)  # on AMQP, what it stores is still acked: the link closes after
        if self.link is not None:
            self.link.stop()
        self.store.close()

    def abandon(self) -> None:
        """Die without a goodbye (crash tests): unstored messages are simply gone, as in a crash.

        On AMQP the deliveries it had not acked go back to the queue, to the party's other instances.
        """
        self._writer.stop()
        if self.link is not None:
            self.link.abandon()
        else:
            drop(self.client)  # the broker sees it go, as it would see a killed process's connection go
        self._inbox.put(None)
        self._writer.join(timeout=30)
        self.store.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("broker refused %s: %s", self.client_id, reason_code)
            return
        filters = [(self.subscription(topic), 1) for topic in self.subscriptions]
        if self.school is not None:  # the school's requests about one data subject (requests.py)
            filters.append((request_topic(self.stream), 1))
        client.subscribe(filters)
        self.connected.set()

    def subscription(self, topic: str) -> str:
        """The topic filter, shared when the backend runs in a ``$share`` group.

        With a group, several backend processes share the load (MQTT 5 / Mosquitto / EMQX / HiveMQ
        ``$share``); exactly-once still holds because the store dedups on (machine, seq).
        """
        return f"$share/{self.shared_group}/{topic}" if self.shared_group else topic

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Paho's thread: verify and queue only; an exception here would end the network loop."""
        self._take(message.topic, message.payload)

    def _delivered(self, topic: str, payload: bytes, receipt: object) -> None:
        """The AMQP link's thread: as ``_on_message``; a delivery with nothing to store is settled at once."""
        if not self._take(topic, payload, receipt) and self.link is not None:
            self.link.settle([receipt], stored=True)

    def _take(self, topic: str, payload: bytes, receipt: object = None) -> bool:
        """Verify and queue; True if reports went to the writer (which settles ``receipt`` once they are stored)."""
        if topic == request_topic(self.stream):
            self._queue_request(bytes(payload))
            return False
        if self.take_call(topic, payload):
            return False
        if not any(topic_matches_sub(sub, topic) for sub in self.subscriptions):
            # a broker's mistake, not a client's message (amqtt resends every retained message matching
            # any client's filter to a resumed session): not ours to judge or to store
            self.misdelivered += 1
            return False
        if len(payload) > MAX_MESSAGE_BYTES:  # an incident, dropped unread: no copy, no parse
            self.oversize += 1
            self.incident(None, topic, f"{len(payload)} bytes, over {MAX_MESSAGE_BYTES}: not read")
            log.warning("dropped a %d-byte message on %s: over %d bytes", len(payload), topic, MAX_MESSAGE_BYTES)
            return False
        try:
            inbound = self.verify(topic, bytes(payload))
        except Exception:  # noqa: BLE001 - one bad message never stops the backend
            self.errors += 1
            log.exception("dropped a report on %s that could not be checked", topic)
            return False
        if not inbound:
            return False
        if receipt is not None:
            inbound = [one._replace(receipt=receipt) for one in inbound]
        self._writer.ensure_alive()  # a writer that died is restarted (and counted) before it is needed
        self._inbox.put(inbound)
        return True

    def take_call(self, topic: str, payload: bytes) -> bool:
        """Paho's thread: a subclass's own call (not a report) is checked and queued here; True if it was one."""
        return False

    def queue_call(self, call: Call) -> None:
        self._writer.ensure_alive()
        self._inbox.put(call)

    def _queue_request(self, raw: bytes) -> None:
        """A request is answered by the writer thread, in order with the reports it may be about."""
        topic = request_topic(self.stream)
        if self.school is None:
            return
        try:
            school = self.school
            request = read_request(raw, self.stream, lambda envelope: school.verify(envelope))
        except WireError as exc:
            self.incident(None, topic, str(exc), raw)
            return
        except Exception:  # noqa: BLE001 - one bad message never stops the backend
            self.errors += 1
            log.exception("dropped a request that could not be checked")
            return
        self._writer.ensure_alive()
        self._inbox.put(request)

    def verify(self, topic: str, raw: bytes) -> list[Inbound]:
        """The reports in the message if its enrolled machine signed it; otherwise none, and an incident."""
        parsed = topics.split(topic)
        if parsed is None:
            return []
        _, machine, kind = parsed

        def enrolled(envelope: Any) -> Any:
            return self.enrolment.verify(machine, envelope)

        try:
            if kind == BATCH_KIND:
                signed, batch = open_batch(raw, machine, self.stream, enrolled)
                crashpoints.reached("backend.batch.verified")
                manifest = signed.payload.decode("utf-8")
                return [Inbound(machine, r.kind, r.payload, r.digest, signed.detached, manifest, r.text) for r in batch]
            signed, payload = open_signed(raw, MAX_REPORT_BYTES, enrolled, kind)
        except WireError as exc:
            self.incident(machine, topic, str(exc), raw)
            return []
        digest = hashlib.sha256(signed.payload).hexdigest()
        return [Inbound(machine, kind, payload, digest, signed.detached, "", signed.payload.decode("utf-8"))]

    def incident(self, machine: str | None, topic: str, reason: str, raw: bytes = b"") -> None:
        """Log a refused message (never its content) and keep it in ``incidents``, within a rate cap."""
        self.incidents += 1
        log.warning("incident: refused a message on %s: %s", topic, reason)
        minute = int(time.monotonic() // 60)
        seen_minute, written = self._incident_minute
        written = written + 1 if seen_minute == minute else 1
        self._incident_minute = (minute, written)
        if written > INCIDENTS_PER_MINUTE:
            return
        at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            self.store.record_incident(at, machine, topic, reason, hashlib.sha256(raw).hexdigest())
        except Exception:  # noqa: BLE001 - the log line above is the record of last resort
            log.exception("could not store an incident")

    def _write_loop(self) -> None:
        """The writer thread: a batch that fails is logged and left unacked (the machines resend it).

        Reports are stored in batches; a school's request is answered on its own, in arrival order.
        """
        waiting: list[Inbound] | Call | None = None
        while True:
            first = waiting if waiting is not None else self._inbox.get()
            waiting = None
            if first is None:
                return
            if not isinstance(first, list):
                self.call(first)
                continue
            batch: list[Inbound] = list(first)
            while len(batch) < BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._inbox.put(None)
                    break
                if not isinstance(item, list):
                    waiting = item
                    break
                batch += item
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 - nothing was acked, so nothing is lost; keep serving
                self.errors += 1
                log.exception("a batch of %d reports could not be stored; left unacked for resending", len(batch))
                self._settle(batch, stored=False)
            else:
                self._settle(batch, stored=True)

    def _settle(self, batch: list[Inbound], *, stored: bool) -> None:
        """On AMQP: ack the deliveries now durable, requeue those that failed (MQTT's QoS 1 acked on arrival)."""
        if self.link is not None:
            self.link.settle({one.receipt for one in batch if one.receipt is not None}, stored)

    def _write(self, batch: list[Inbound]) -> None:
        reports: list[Report] = []
        for inbound in batch:
            try:
                report = self.report(inbound.machine, inbound.kind, inbound.payload)
            except Exception as exc:  # noqa: BLE001 - a bad report is dropped alone; the rest of the batch is stored
                self.incident(inbound.machine, f"{self.stream}/{inbound.kind}", f"refused: {exc}")
                continue
            if report is not None:
                report.text = inbound.text if report.payload is inbound.payload else ""  # a summary keeps its own
                report.digest, report.signature, report.manifest = inbound.digest, inbound.signature, inbound.manifest
                reports.append(report)
        if reports:
            acked = self.store.store_many(reports)
            self.stored(reports)
            for machine, seq in self.store.take_conflicts():
                self.incident(machine, f"{self.stream} stream", f"a second, different report at stored seq {seq}")
            for machine, seq in acked.items():
                self.ack(machine, seq)

    def stored(self, reports: list[Report]) -> None:
        """After a batch is durable, before it is acked: a subclass's follow-up (the issuer's credits list)."""

    def call(self, call: Call) -> None:
        """Answer a call on the writer thread: a school's request here; a subclass adds its own kinds."""
        if isinstance(call, PartyRequest):
            self.client.publish(answer_topic(self.stream), self.signed_answer(call), qos=1)

    def signed_answer(self, request: PartyRequest) -> str:
        """The answer's wire form; a request that fails is answered with an error, never half-done silently."""
        try:
            body = self.answer(request)
        except Exception as exc:  # noqa: BLE001 - the requester hears why; the backend keeps serving
            self.errors += 1
            log.exception("could not answer request %s", request.id)
            body = {"error": f"{exc.__class__.__name__}: {str(exc)[:160]}"}
        document = {"id": request.id, "party": self.stream, "kind": request.kind} | body
        return compose(self.identity, document)

    def answer(self, request: PartyRequest) -> dict[str, Any]:
        """What this party answers to a checked request from the school."""
        raise NotImplementedError

    def receive(self, topic: str, raw: bytes) -> None:
        """Handle one message synchronously, through the same checks (tests replay duplicates here)."""
        inbound = self.verify(topic, raw)
        if inbound:
            self._write(inbound)

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        """Turn a message into a sequenced report to store, or handle it and return None."""
        raise NotImplementedError

    def ack(self, machine: str, seq: int) -> None:
        self.client.publish(topics.ack(self.stream, machine), compose_ack(self.identity, machine, seq), qos=1)
        crashpoints.reached("backend.ack.after")


def sequence_number(payload: dict[str, Any]) -> int:
    return sequence(payload.get("seq"), minimum=1)
