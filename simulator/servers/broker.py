"""The embedded MQTT broker (amqtt) in its own thread, bound to 127.0.0.1 only.

amqtt 0.12.1 speaks MQTT 3.1.1, does not resend QoS 1 after a reconnect, and queues nothing durably,
so nothing in this project relies on it for delivery: the machine's outbox and the backend's
application-level ack carry exactly-once. It is here so `make demo` needs nothing installed.

One amqtt defect is mended here, because no outbox can make up for it: a client that takes over its
own session (a backend restarted while its old connection was still half-open) must keep it. See
``_session_keeping_broker``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from firmware.threads import daemon

log = logging.getLogger(__name__)
PRIVATE_FLOOR = 20000  # servers started here take ports from here up to the kernel's ephemeral range
SHUTDOWN_S = 5.0  # amqtt's own shutdown; what is still running after it is cancelled
PORT_TRIES = 5  # a port found free that another process bound first: that many fresh ones
T = TypeVar("T")


class PortTaken(RuntimeError):
    """Another process bound the port between our check that it was free and the server's own bind."""


def logged_port_taken(log: Path, since: int) -> bool:
    """Whether a server's ``log``, past byte ``since`` (what earlier starts wrote), says its port was taken."""
    return log.exists() and b"Address already in use" in log.read_bytes()[since:]


def on_a_free_port(start: Callable[[], T], move: Callable[[], None] | None) -> T:
    """``start()``; while it raises ``PortTaken``, ``move()`` to a fresh port and start again (``PORT_TRIES``).

    ``move`` is None for a port the caller gave: it is never changed behind the caller's back.
    """
    for attempt in range(1, PORT_TRIES + 1):
        try:
            return start()
        except PortTaken:
            if move is None or attempt == PORT_TRIES:
                raise
            move()
    raise AssertionError("unreachable")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free now, from below the kernel's ephemeral range.

    A port the kernel picks for ``bind(0)`` comes from the range it also gives outgoing connections,
    so between our probe and the server's own bind another process's connection may take it (a
    cluster's third node once found its distribution port taken and never started). Ports below that
    range are never handed out implicitly; each is probed by binding it, all held open together so
    the ``count`` are distinct.
    """
    low = _ephemeral_floor()
    sockets: list[socket.socket] = []
    try:
        for port in random.sample(range(PRIVATE_FLOOR, low), k=min(low - PRIVATE_FLOOR, 50 * count)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
            if len(sockets) == count:
                return [int(s.getsockname()[1]) for s in sockets]
        raise OSError(f"no {count} free loopback ports between {PRIVATE_FLOOR} and {low}")
    finally:
        for sock in sockets:
            sock.close()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


class EmbeddedBroker:
    """Start, stop and restart an amqtt broker on a fixed loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._may_move = port is None  # a port chosen here, before its first start: another may replace it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker

        logging.getLogger("transitions").setLevel(logging.WARNING)
        # amqtt logs its internal errors with tracebacks (a client that vanished mid-write, a dict that
        # changed while it iterated, a PUBACK that came late); delivery never relies on it, so they are
        # the broker's business, not the user's: shown only when this module logs at debug level
        quiet = not log.isEnabledFor(logging.DEBUG)
        logging.getLogger("amqtt").setLevel(logging.CRITICAL + 1 if quiet else logging.DEBUG)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._loop.set_exception_handler(_unretrieved)
            self._thread = daemon(self._loop.run_forever, "embedded-broker")
            self._thread.start()

        async def _start() -> Any:
            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
            broker = _session_keeping_broker(Broker)(config)
            await broker.start()
            return broker

        def start_once() -> Any:
            try:
                return self._run(_start())
            except Exception as exc:  # amqtt's BrokerError, caused by the bind's OSError
                if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EADDRINUSE:
                    raise PortTaken(f"port {self.port} was taken before the broker could bind it ({exc})") from exc
                raise

        def move() -> None:
            self.port = free_port()

        self._broker = on_a_free_port(start_once, move if self._may_move else None)
        self._may_move = False  # restarts come back on the same port: the machines dial it
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Shut the broker down (clients see the connection drop); the loop thread stays for a restart.

        Bounded on every Python: from 3.12 ``Server.wait_closed()`` also waits for every client
        connection, and amqtt can wait there for a connection it no longer serves. The listening
        socket is closed before that wait, so after ``SHUTDOWN_S`` whatever still runs is cancelled.
        """
        if self._broker is not None:
            broker, self._broker = self._broker, None
            try:
                self._run(broker.shutdown(), timeout=SHUTDOWN_S)
            except TimeoutError:
                left = self._run(_cancel_everything_else())
                log.debug("amqtt shutdown took over %.0f s; cancelled %d leftover task(s)", SHUTDOWN_S, left)

    def close(self) -> None:
        self.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None

    def _run(self, coro: Any, timeout: float = 15.0) -> Any:
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _session_keeping_broker(broker: type[Any]) -> type[Any]:
    """The amqtt ``Broker``, but a connection that lost its session to a takeover leaves the session alone.

    On a takeover amqtt hands the old connection's ``Session`` object to the new one. The old
    connection's message loop then ends and marks that shared session disconnected; within a second
    the session monitor removes what it takes for an abandoned anonymous session, stopping the *new*
    connection's handler and deleting its subscriptions. The client was cut off, or, when the monitor
    came while it connected, left connected and deaf for good (tests/simulator/servers/
    test_embedded_broker.py). Mosquitto keeps the session with the new connection; so does this.

    And a persistent session is kept whoever opened it. amqtt takes every client let in by its
    open door (``allow_anonymous``) for anonymous, and for an anonymous client it neither queues the
    QoS 1 messages published while it is away nor keeps its session once it is gone: a command sent
    to a machine during an outage was lost, where Mosquitto delivers it when the machine is back.
    What it queued it then delivered flagged retained, which MQTT 3.1.1 (3.3.1.3) forbids for a
    subscription that existed when the message was published, and a machine ignores a retained command.
    """

    class SessionKeepingBroker(broker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._newest: dict[str, Any] = {}  # client id -> the handler of its latest connection

        async def _initialize_client_session(self, *args: Any) -> tuple[Any, Any]:
            handler, session = await super()._initialize_client_session(*args)
            self._newest[session.client_id] = handler  # before the takeover ends the old connection's loop
            return handler, session

        async def _authenticate(self, session: Any, *args: Any) -> bool:
            authenticated = bool(await super()._authenticate(session, *args))
            session.is_anonymous = False  # the open door is this broker's; the client asked for a session
            return authenticated

        async def _publish_session_retained_messages(self, session: Any) -> None:
            """What was queued for the session while it was away, as ordinary deliveries (RETAIN 0)."""
            handler = self._get_handler(session)
            sent = []
            while handler and not session.retained_messages.empty():
                queued = await session.retained_messages.get()
                delivery = handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False)
                sent.append(asyncio.ensure_future(delivery))
            if sent:
                await asyncio.wait(sent)

        async def _handle_disconnect(self, client_session: Any, handler: Any, disconnect_waiter: Any) -> None:
            if self._newest.get(client_session.client_id, handler) is not handler:  # taken over: only this
                await self._stop_handler(handler)  # connection ends; the session is the newer one's
                return
            self._newest.pop(client_session.client_id, None)
            await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    return SessionKeepingBroker


async def _cancel_everything_else() -> int:
    """Cancel every task on the broker's loop but this one (the loop runs nothing but the broker)."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(tasks)


def _unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A broker task's exception nobody awaited: debug level, like amqtt's own errors (see start)."""
    log.debug("embedded broker: %s", context.get("message"), exc_info=context.get("exception"))
