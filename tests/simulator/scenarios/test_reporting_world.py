"""A reporting world that cannot start says why in one error and leaves nothing running behind it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from simulator.scenarios import reporting_world
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.broker import free_port
from simulator.servers.mosquitto import MosquittoProcess
from tests.support.reporting import require_mosquitto


def backend_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.is_alive() and "backend" in t.name]


def test_backends_that_never_reach_the_broker_fail_the_start_once_and_are_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting_world, "SUBSCRIBED_S", 1.0)
    nobody = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    world = ReportingWorld(tmp_path / "world", broker=nobody)
    with pytest.raises(RuntimeError, match=r"vendor-backend never connected to mqtt://127\.0\.0\.1:\d+ within 1 s"):
        world.start()
    assert world.link is not None
    with pytest.raises(ConnectionRefusedError):  # the fault proxy it started is closed
        socket.create_connection(world.link.address, timeout=1).close()
    assert backend_threads() == [], "the backends it started are stopped"


def test_a_mosquitto_that_died_is_named_with_the_end_of_its_log(tmp_path: Path) -> None:
    require_mosquitto()
    broker = MosquittoProcess(tmp_path / "mosquitto").start()
    assert f"mosquitto on port {broker.port} running" in broker.diagnosis()
    broker.process.kill()  # type: ignore[union-attr]
    broker.process.wait(10)  # type: ignore[union-attr]
    told = broker.diagnosis()
    assert "not running (exit -9)" in told and "its log ends:" in told
    broker.stop()
