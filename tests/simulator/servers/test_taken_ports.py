"""A broker whose port another process took first is not taken for started.

Ports are found free, then bound by the broker a moment later; another test worker may bind one in
between. Mosquitto then exits ("Address already in use") while a connection to the port still
succeeds -- to the other process's server -- and the backends met a stranger's TLS and never
subscribed (a CI run on 2026-12-07). Now the start checks that mosquitto itself listens, and a port
chosen here is exchanged for a fresh one; the embedded broker and PostgreSQL, which fail loudly, move
the same way.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.servers import broker as embedded
from simulator.servers import mosquitto, postgres
from simulator.servers.broker import EmbeddedBroker, free_port
from simulator.servers.mosquitto import MosquittoProcess, PortTaken, secured_mosquitto
from simulator.servers.postgres import PostgresProcess, pg_bin
from tests.support.packages import missing_package
from tests.support.reporting import require_mosquitto


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another process's server listens on (played by this socket)."""
    stranger = socket.socket()
    stranger.bind(("127.0.0.1", free_port()))
    stranger.listen()
    yield stranger.getsockname()[1]
    stranger.close()


def handed_first(monkeypatch: pytest.MonkeyPatch, module: object, port: int) -> None:
    """The next free port ``module`` finds is ``port``, as if another process took it right after the check."""
    ports = iter([port])
    monkeypatch.setattr(module, "free_port", lambda: next(ports, None) or free_port())


@pytest.mark.mosquitto
def test_a_port_given_and_taken_is_refused_not_taken_for_a_started_broker(taken: int, tmp_path: Path) -> None:
    require_mosquitto()
    broker = MosquittoProcess(tmp_path / "given", port=taken)
    with pytest.raises(PortTaken, match=f"port {taken} was taken"):
        broker.start()
    assert not broker.running and broker.port == taken, "a port the caller chose is never swapped behind its back"


def test_a_broker_that_exited_does_not_listen_where_another_process_does(taken: int) -> None:
    """The cause of a CI failure (DID NOT RAISE PortTaken): mosquitto exited on the taken port between the start's
    poll and its look at the process's sockets; that look failed, and its fallback -- does anything answer
    there? -- found the other process's server and took the dead broker for started."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: /proc holds nothing of it now
    assert not mosquitto._listens(gone.pid, "127.0.0.1", taken)


@pytest.fixture
def found_free_but_taken(taken: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Mosquitto's next free port is ``taken``."""
    require_mosquitto()
    handed_first(monkeypatch, mosquitto, taken)
    return taken


@pytest.mark.mosquitto
def test_a_port_chosen_here_and_taken_is_exchanged_for_a_fresh_one(found_free_but_taken: int, tmp_path: Path, closing):
    broker = closing(MosquittoProcess(tmp_path / "open").start())
    assert broker.port != found_free_but_taken and broker.running
    assert mosquitto._listens(broker.pid, broker.host, broker.port)
    assert not mosquitto._listens(broker.pid, broker.host, found_free_but_taken), "the stranger's port is not ours"


@pytest.mark.mosquitto
def test_the_secured_broker_moves_to_a_fresh_port_and_its_parties_follow(
    found_free_but_taken: int, tmp_path: Path, closing
) -> None:
    broker, access = secured_mosquitto(tmp_path / "world")
    closing(broker)
    assert broker.port != found_free_but_taken and broker.running
    assert access.shared.port == broker.port and access.party("vendor").port == broker.port
    assert f"listener {broker.port} " in (tmp_path / "world" / "broker" / "mosquitto.conf").read_text()


def test_the_embedded_broker_moves_off_a_taken_port_it_chose_but_never_off_a_given_one(
    taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed_first(monkeypatch, embedded, taken)
    with EmbeddedBroker() as moved:
        assert moved.port != taken
        socket.create_connection((moved.host, moved.port), timeout=5).close()
        moved.stop()
        moved.start()  # a restart comes back where the machines dial it
    given = EmbeddedBroker(taken)
    try:
        with pytest.raises(Exception, match="address already in use"):
            given.start()
        assert given.port == taken
    finally:
        given.close()


def test_postgresql_moves_off_a_taken_port_it_chose(
    taken: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pg_bin() is None:
        missing_package("PostgreSQL", "postgresql")
    handed_first(monkeypatch, postgres, taken)
    server = PostgresProcess(tmp_path / "pg").start()
    try:
        assert server.port != taken
        assert b"Address already in use" in (tmp_path / "pg" / "postgres.log").read_bytes(), "it met the stranger first"
    finally:
        server.stop()
