"""A fault-injecting TCP proxy in front of a broker: the network outage, the same on every broker.

Stopping the broker to simulate an outage only works for a broker the run owns, and behaves
differently for each (amqtt forgets everything, Mosquitto keeps sessions, a URL broker cannot be
stopped at all). Like Toxiproxy's ``down``, this cuts the *link* instead: ``down()`` resets every
connection through it and refuses new ones until ``up()``; the broker and everyone connected to it
directly never notice. The machine dials the proxy (``BrokerAddress.dial``), so TLS still runs end
to end and checks the broker's own name.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from dataclasses import dataclass, field

from firmware.threads import daemon

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5.0
CHUNK = 65536
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, as a dropped link does


@dataclass
class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; ``down()``/``up()`` cut and restore the link."""

    upstream: tuple[str, int]
    host: str = "127.0.0.1"
    port: int = 0
    _listener: socket.socket | None = field(default=None, repr=False)
    _links: set[socket.socket] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _down: bool = False
    cut: int = 0  # connections reset by down(), for the run's log

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def is_up(self) -> bool:
        return not self._down

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        daemon(self._accept, f"fault-proxy-{self.port}").start()
        return self

    def down(self) -> None:
        """The link fails: every connection through the proxy is reset, new ones are refused."""
        with self._lock:
            self._down = True
            links, self._links = self._links, set()
        for sock in links:
            _reset(sock)
        self.cut += len(links) // 2
        log.info("fault proxy %s: link down (%d connection(s) reset)", self.port, len(links) // 2)

    def up(self) -> None:
        with self._lock:
            self._down = False
        log.info("fault proxy %s: link up", self.port)

    def close(self) -> None:
        self.down()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()

    def _accept(self) -> None:
        while (listener := self._listener) is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            if self._down:
                _reset(client)  # the link is down: the client sees its connection fail
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=CONNECT_TIMEOUT_S)
                server.settimeout(None)
            except OSError as exc:
                log.info("fault proxy %s: upstream %s:%s unreachable: %s", self.port, *self.upstream, exc)
                _reset(client)
                continue
            with self._lock:
                if self._down:  # down() ran while we dialled
                    _reset(client)
                    _reset(server)
                    continue
                self._links |= {client, server}
            for source, sink in ((client, server), (server, client)):
                daemon(self._pump, f"fault-proxy-{self.port}-pump", source, sink).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction until either side ends; then end both (a half-open link helps nobody)."""
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._links -= {source, sink}
        for sock in (source, sink):
            _close(sock)


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
