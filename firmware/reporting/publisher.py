"""Drains the SQLite outbox to MQTT: QoS 1 on the wire, deleted only after the backend's own ack.

Neither the broker nor paho is trusted with delivery (amqtt does not resend after a reconnect, paho
keeps unacknowledged messages only in memory): the outbox row is the message until the receiving
party says it has stored it durably. Resends are harmless because receivers deduplicate on
(machine, seq). One worker thread owns this module's database connection; paho's network thread
only hands acks over through the inbox's queue (inbox.py).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware import crashpoints
from firmware.config.machine import Reporting
from firmware.domain import STREAMS
from firmware.identity.signing import Identity
from firmware.journal.hotlist import state_on
from firmware.journal.outbox import Outbox, PendingReport
from firmware.ports import Clock
from firmware.reporting import batches, topics
from firmware.reporting.inbox import Inbox
from firmware.reporting.mqtt import BrokerAddress, drop, machine_client_id, make_client
from firmware.reporting.signed import canonical, sign_text
from firmware.reporting.supervised import SupervisedThread

log = logging.getLogger(__name__)
MAX_RESEND_WAIT_S = 60.0
MAX_IDLE_S, MIN_IDLE_S = 0.2, 0.01  # the worker's sleep between timers, when nothing wakes it
FLUSH_POLL_S = 0.05  # flush() looks again this often even if no ack empties the outbox (new reports, a lost ack)
GOODBYE_S = 2.0  # how long a stopping machine waits for its "offline" to be acknowledged


class OutboxPublisher:
    """One machine's link to the broker: outbox out, status and heartbeat; what arrives goes to its inbox.

    Everything it publishes is signed with the machine's own key. The inbox (inbox.py) checks each
    ack's signature and queues it; this worker deletes what an ack covers, never more than it sent.
    """

    def __init__(
        self,
        db_path: Path,
        machine: str,
        address: BrokerAddress,
        clock: Clock,
        identity: Identity,
        inbox: Inbox,
        *,
        reporting: Reporting,
        heartbeat_s: float = 30.0,
        resend_after_s: float = 5.0,
        read_ahead: int = 2000,
        window: int = 5000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.machine = machine
        self.identity = identity
        self.inbox = inbox
        self.address = address
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.resend_after_s = resend_after_s
        self.reporting = reporting  # the machine config's batch limits (required: a default would hide a missed wiring)
        self.read_ahead = read_ahead  # most reports read from the outbox per stream per pass
        self.window = window  # most reports in flight per stream, so a slow receiver is not flooded
        self._monotonic = monotonic
        self._outbox = Outbox.open(db_path)
        self._wake = threading.Event()
        inbox.on_ack = self._wake.set
        self._stop = threading.Event()
        self._emptied = threading.Event()  # set when an ack left the outbox empty (flush waits on it)
        self._connected = threading.Event()
        self._link_up = True
        # what is still in the outbox was never acked: start the window just below it
        self._acked: dict[str, int] = self._outbox.acked_below()
        self._last_sent: dict[str, int] = dict(self._acked)  # highest seq handed to the broker since the last resend
        # highest seq handed to the broker in this boot: an ack above it acknowledges something this
        # machine never sent (a forged or confused ack) and must not delete unsent reports
        self._max_sent: dict[str, int] = dict(self._acked)
        self._refused_unsent = 0  # acks, correctly signed, for reports this boot never sent
        self._worker_errors = 0
        self._last_progress = self._monotonic()
        self._resend_wait = resend_after_s
        self._last_heartbeat = -heartbeat_s
        self.checks_hotlist = False  # the machine checks lost cards: its heartbeat says whether it can
        self.connects = 0  # accepted connections since start: after a reconnect the node announces the machine again
        self.published = 0  # MQTT messages handed to the broker (a batch is one)
        self.reports_sent = 0  # reports in them
        self.broker_acked = 0  # PUBACKs: the broker has the message (not yet the receiver)
        self._client = make_client(address, machine_client_id(machine), persistent=True)
        self._client.will_set(topics.vendor(machine, "status"), self._status("offline"), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = inbox.on_message
        self._client.on_publish = self._on_publish
        self._thread = SupervisedThread(self._run, f"outbox-{machine}")

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> OutboxPublisher:
        self._client.connect_async(*self.address.endpoint, keepalive=15)
        self._client.loop_start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._thread.stop()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._connected.is_set():
            goodbye = self._client.publish(topics.vendor(self.machine, "status"), self._status("offline"), qos=1,
                                           retain=True)  # fmt: skip
            # acknowledged before the DISCONNECT: a broker that drops what is in flight when a client leaves
            # (RabbitMQ 3.10's MQTT plugin does) would leave the machine "online" on the dashboard
            with contextlib.suppress(ValueError, RuntimeError):  # not sent (the link just dropped): the Will says it
                goodbye.wait_for_publish(GOODBYE_S)
        self._client.disconnect()
        self._client.loop_stop()
        self._outbox.close()

    def abandon(self) -> None:
        """A power cut: stop the network without a goodbye (the broker will publish the Will)."""
        self._thread.stop()
        self._stop.set()
        self._wake.set()
        drop(self._client)
        self._thread.join(timeout=10)
        self._outbox.close()

    def set_link(self, up: bool) -> None:
        """Cut or restore the machine's network from inside, cleanly (`broker: down` resets it in a proxy)."""
        self._link_up = up
        if up:  # paho's loop thread ends with a requested disconnect: start a new one
            self._client.connect_async(*self.address.endpoint, keepalive=15)
            self._client.loop_start()
        else:
            self._client.disconnect()
            self._client.loop_stop()

    def wake(self) -> None:
        self._thread.ensure_alive()  # the controller's thread calls this after every event: the supervisor
        self._wake.set()

    @property
    def refused_acks(self) -> int:
        """Acks refused: unsigned, forged or for another machine (the inbox), or above what was sent."""
        return self.inbox.refused_acks + self._refused_unsent

    @property
    def handler_errors(self) -> int:
        """Messages or worker passes that raised; each was dropped or retried, the link went on."""
        return self.inbox.handler_errors + self._worker_errors

    @property
    def restarts(self) -> int:
        return self._thread.restarts

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float = 15.0) -> bool:
        return self._connected.wait(timeout)

    def depth(self) -> int:
        return self._outbox.depth()

    def flush(self, timeout: float = 15.0) -> bool:
        """Wait until every outbox row is acknowledged; False on timeout (e.g. broker down)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.depth() == 0:
                return True
            self._wake.set()
            self._emptied.wait(FLUSH_POLL_S)  # woken the moment an ack empties the outbox, not a poll later
            self._emptied.clear()
        return self.depth() == 0

    def publish_now(self, topic: str, payload: str) -> bool:
        """A message worth only now (an authorisation request): QoS 0, and only on a link that is up."""
        if not (self._connected.is_set() and self._link_up):
            return False
        return bool(self._client.publish(topic, payload, qos=0).rc == 0)

    def wait_published(self, timeout: float = 15.0) -> bool:
        """Wait until every outbox row has been handed to the broker and PUBACKed at least once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = all(self._last_sent.get(stream, 0) >= top for stream, top in self._outbox.newest().items())
            if sent and self.broker_acked >= self.published and self.connected:
                return True
            self._wake.set()
            time.sleep(0.01)
        return False

    # ---- paho callbacks (network thread) ------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the connection: %s", self.address, reason_code)
            return
        client.subscribe(self.inbox.subscriptions())
        client.publish(topics.vendor(self.machine, "status"), self._status("online"), qos=1, retain=True)
        self._last_sent = dict(self._acked)  # resend everything not yet acknowledged
        self.connects += 1
        self._connected.set()
        self._wake.set()
        log.info("connected to %s", self.address)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        log.info("disconnected from %s (%s); the outbox keeps every report", self.address, reason_code)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self.broker_acked += 1
        crashpoints.reached("publish.after")

    # ---- worker thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._idle_wait())
            self._wake.clear()
            try:
                self._apply_acks()
                if self._connected.is_set() and self._link_up:
                    self._send_pending()
                    self._heartbeat()
            except sqlite3.Error as exc:  # the controller holds the write lock for long: try again
                log.warning("outbox read failed, retrying: %s", exc)
            except Exception:  # noqa: BLE001 - the outbox keeps every report; this thread must keep draining it
                self._worker_errors += 1
                log.exception("outbox worker pass failed; retrying")
                self._stop.wait(1.0)

    def _idle_wait(self) -> float:
        """Sleep until the next timer (heartbeat, or resend while reports are unacknowledged), at most 0.2 s.

        Everything else wakes the thread: a new report (``wake``), an ack, a connect. A thread that polled
        every few milliseconds would take the interpreter lock from the controller each time it woke.
        """
        now = self._monotonic()
        due = [self.heartbeat_s - (now - self._last_heartbeat)]
        if any(self._last_sent[stream] > self._acked[stream] for stream in STREAMS):
            due.append(self._resend_wait - (now - self._last_progress))
        return min(MAX_IDLE_S, max(MIN_IDLE_S, min(due)))

    def _apply_acks(self) -> None:
        """Delete what the receivers acknowledged: all acks waiting now, one transaction."""
        newest: dict[str, int] = {}
        while True:
            try:
                stream, seq = self.inbox.acks.get_nowait()
            except queue.Empty:
                break
            if seq > self._max_sent[stream]:
                self._refused_unsent += 1
                log.warning("ignored an ack for %s seq %d: the highest sent is %d", stream, seq, self._max_sent[stream])
                continue
            newest[stream] = max(seq, newest.get(stream, 0))
        if not newest:
            return
        for stream, seq in newest.items():
            self._acked[stream] = max(self._acked[stream], seq)
        self._wake.set()  # the window has room again
        crashpoints.reached("ack.received")
        if self._outbox.delete_acked(newest):
            self._last_progress = self._monotonic()
            self._resend_wait = self.resend_after_s
            if self._outbox.empty():
                self._emptied.set()

    def _send_pending(self) -> None:
        if self._monotonic() - self._last_progress > self._resend_wait:
            # no ack for a while: the receiver may have lost them. Back off, so a slow receiver is not
            # buried under resends of what it is still working through.
            self._last_sent = dict(self._acked)
            self._last_progress = self._monotonic()
            self._resend_wait = min(self._resend_wait * 2, MAX_RESEND_WAIT_S)
        for stream in STREAMS:
            room = self.window - (self._last_sent[stream] - self._acked[stream])
            if room <= 0:
                continue  # flow control: wait for the receiver before sending more
            limit = min(room, self.read_ahead)
            waiting = self._outbox.after(stream, self._last_sent[stream], limit)
            for group in batches.plan(waiting, self.reporting.batch_reports, self.reporting.batch_bytes):
                if not self._publish(stream, group):
                    return  # not connected any more; the next connect resends from the last ack
            if len(waiting) == limit and limit < room:
                self._wake.set()  # more waits and the window has room: the next pass comes at once, not at a timer

    def _publish(self, stream: str, group: list[PendingReport]) -> bool:
        """One MQTT message: a report on its own topic, or several as one batch signed once."""
        crashpoints.reached("publish.before")
        retain = False  # a batch is never retained (a broker's retain guard refuses it), even one holding a snapshot
        if len(group) == 1:
            report = group[0]
            topic, payload, retain = report.topic, sign_text(self.identity, report.payload), report.retain
        else:
            topic = topics.batch(stream, self.machine)
            payload = batches.compose(self.identity, self.machine, stream, group)
            crashpoints.reached("publish.batch")
        if self._client.publish(topic, payload, qos=1, retain=retain).rc != 0:
            return False
        self._last_sent[stream] = group[-1].seq
        self._max_sent[stream] = max(self._max_sent[stream], group[-1].seq)
        self.published += 1
        self.reports_sent += len(group)
        return True

    def _heartbeat(self) -> None:
        now = self._monotonic()
        if now - self._last_heartbeat < self.heartbeat_s:
            return
        self._last_heartbeat = now
        at = self.clock.now()
        body: dict[str, object] = {
            "machine": self.machine,
            "time": at.isoformat(timespec="seconds"),
            "outbox": self.depth(),
            "restarts": self.restarts,
        }
        if self.checks_hotlist:  # read on this thread's own connection
            body["hotlist"] = state_on(self._outbox.conn, at)
        self._client.publish(topics.vendor(self.machine, "heartbeat"), sign_text(self.identity, canonical(body)), qos=0)

    # ---- signatures -----------------------------------------------------------------------------
    def _status(self, state: str) -> str:
        return sign_text(self.identity, canonical({"machine": self.machine, "state": state}))
