"""A party's people push while its backend runs, each under a certificate of its own.

The generated broker takes a client's id from its certificate (one certificate, one connection). The
issuer's lost-card list, the school's guardian controls and the operator's commands were pushed
under the backend's own certificate, so each push threw that party's backend off the broker
("Client issuer already connected, closing old connection") until it reconnected: an account-mode
tap asked the issuer in that second and was answered offline. And a backend that crashes leaves no
half-open connection behind for its successor to take over, as no killed process does.
"""

from __future__ import annotations

from pathlib import Path

from firmware.reporting import topics
from simulator.backends.push import publish
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.broker_setup import TOOLS
from simulator.servers.mosquitto import MosquittoProcess
from tests.support.reporting import require_mosquitto

TAKEN_OVER = "already connected, closing old connection"
PUSHES = {  # a topic each party's tool writes (the generated ACL lets only that party write it)
    "vendor": topics.command("TPE-DAAN-JH-01", "restock"),
    "issuer": "issuer/v1/hotlist",
    "school": "school/v1/TPE-DAAN-JH/controls",
}


def test_each_party_s_tool_pushes_without_throwing_its_backend_off(tmp_path: Path, closing) -> None:
    require_mosquitto()
    world = closing(ReportingWorld(tmp_path / "world", broker="mosquitto").start())
    world.school_up()
    broker = world.owned_broker
    assert isinstance(broker, MosquittoProcess)
    log = broker.workdir / "mosquitto.log"
    for party, topic in PUSHES.items():
        publish(world.party_address(TOOLS[party]), [(topic, "{}", False)], f"{party}-tool")
    backend_ids = ("vendor", "issuer", "school")
    assert not [line for line in log.read_text().splitlines() if TAKEN_OVER in line], "a push threw a backend off"
    for backend_id in backend_ids:  # the check above can fail: the backend's certificate does throw it off
        publish(world.party_address(backend_id), [(PUSHES[backend_id], "{}", False)], f"{backend_id}-as-backend")
    taken = {line.split("Client ")[1].split()[0] for line in log.read_text().splitlines() if TAKEN_OVER in line}
    assert taken == set(backend_ids)


def test_a_backend_that_crashes_leaves_no_half_open_connection_for_its_successor_to_take_over(
    tmp_path: Path, closing
) -> None:
    """A killed process's socket is closed by the operating system: the broker sees the crashed backend go.

    ``abandon()`` (a crash in the tests and `backend: down`) stopped paho's loop and left the socket
    open, so the broker held a half-open session and its successor had to take it over.
    """
    require_mosquitto()
    world = closing(ReportingWorld(tmp_path / "world", broker="mosquitto").start())
    broker = world.owned_broker
    assert isinstance(broker, MosquittoProcess)
    log = broker.workdir / "mosquitto.log"
    world.vendor_down()
    world.vendor_up()
    assert world.vendor is not None and world.vendor.subscribed.is_set()
    assert not [line for line in log.read_text().splitlines() if TAKEN_OVER in line], "it found the old one there"
