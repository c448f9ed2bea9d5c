"""`vending broker setup` on a real Mosquitto: TLS with client certificates, identity from the certificate, ACLs.

An anonymous client and a client without a certificate are refused; machine A cannot publish as
machine B or read B's commands; the vendor cannot subscribe to ``issuer/#``; and a machine and the
backends, each with its own certificate, still deliver a signed report end to end.
"""

from __future__ import annotations

import os
import queue
import ssl
from pathlib import Path

import pytest
from typer.testing import CliRunner

from firmware.reporting.mqtt import BrokerAddress, make_client
from simulator.cli import app
from simulator.servers.broker import free_port
from simulator.servers.broker_setup import BrokerSetup
from simulator.servers.mosquitto import MosquittoProcess
from tests.support.reporting import require_mosquitto
from tests.support.waiting import eventually

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def secured(tmp_path: Path, closing) -> BrokerSetup:
    require_mosquitto()
    port = free_port()
    result = CliRunner().invoke(
        app,
        [
            "broker",
            "setup",
            "--dir",
            str(tmp_path / "broker"),
            "--machines",
            "M-A,M-B,TPE-DAAN-JH-01",
            "--port",
            str(port),
        ],
    )
    assert result.exit_code == 0, result.output
    setup = BrokerSetup(tmp_path / "broker", port)
    closing(MosquittoProcess(tmp_path / "broker", port, config=setup.config).start())
    return setup


class Client:
    """A paho client that records what it was refused and what it received."""

    def __init__(self, address: BrokerAddress, name: str) -> None:
        self.connected: queue.Queue[bool] = queue.Queue()
        self.granted: queue.Queue[list[int]] = queue.Queue()
        self.received: list[tuple[str, bytes]] = []
        self.client = make_client(address, name, persistent=False)
        self.client.reconnect_delay_set(min_delay=30, max_delay=30)  # one attempt is all a refusal needs
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(not rc.is_failure)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.granted.put([code.value for code in codes])
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        self.address = address

    def connect(self) -> bool:
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=10)
        except (OSError, ssl.SSLError):
            return False
        self.client.loop_start()
        try:
            return self.connected.get(timeout=5)
        except queue.Empty:
            return False

    def subscribe(self, topic: str) -> int:
        self.client.subscribe(topic, qos=1)
        return self.granted.get(timeout=5)[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_anonymous_and_certificate_less_clients_are_refused(secured: BrokerSetup, closing) -> None:
    plain = Client(BrokerAddress("127.0.0.1", secured.port), "anonymous")
    assert not plain.connect(), "a plain-TCP anonymous client got in"
    no_cert = BrokerAddress("127.0.0.1", secured.port, tls=True, ca_file=str(secured.directory / "ca.crt"))
    assert not closing(Client(no_cert, "no-certificate")).connect(), "a TLS client without a certificate got in"
    vendor = closing(Client(secured.address("vendor"), "vendor"))
    assert vendor.connect(), "the vendor's certificate is refused"


def test_each_party_is_held_to_its_own_topics(secured: BrokerSetup, closing) -> None:
    """Mosquitto grants a subscription and then delivers nothing the ACL forbids; publishing likewise."""
    clients = {name: closing(Client(secured.address(name), name)) for name in ("vendor", "issuer", "M-A", "M-B")}
    for client in clients.values():
        assert client.connect()
    vendor, issuer, machine_a, machine_b = clients.values()
    vendor.subscribe("issuer/#")
    vendor.subscribe("vending/v1/+/sale")
    issuer.subscribe("issuer/v1/+/settlement")
    machine_a.subscribe("vending/v1/M-B/cmd/+")  # B's commands
    machine_b.subscribe("vending/v1/M-B/cmd/+")
    machine_a.client.publish("issuer/v1/M-A/settlement", b"sealed", qos=1).wait_for_publish(5)
    machine_a.client.publish("vending/v1/M-A/sale", b"from A", qos=1).wait_for_publish(5)
    machine_a.client.publish("vending/v1/M-B/sale", b"as if from B", qos=1).wait_for_publish(5)
    vendor.client.publish("vending/v1/M-B/cmd/restock", b"for B", qos=1).wait_for_publish(5)
    # the positive controls arrive; then nothing forbidden has arrived alongside them
    eventually(lambda: issuer.received and machine_b.received and vendor.received, what="the allowed messages")
    assert [topic for topic, _ in issuer.received] == ["issuer/v1/M-A/settlement"]
    assert [topic for topic, _ in vendor.received] == ["vending/v1/M-A/sale"], (
        "the vendor read issuer/# or A posed as B"
    )
    assert machine_a.received == [], "machine A read machine B's commands"
    assert [topic for topic, _ in machine_b.received] == ["vending/v1/M-B/cmd/restock"]


def test_a_machine_reports_to_the_vendor_through_the_secured_broker(secured: BrokerSetup, tmp_path, closing) -> None:
    """The whole path, each party with its own certificate: a signed sale stored once and acked."""
    from dataclasses import replace

    from simulator.scenarios import load_scenario
    from simulator.scenarios.reporting_world import ReportingWorld
    from simulator.scenarios.runner import ScenarioRunner
    from tests.conftest import CONFIGS
    from tests.support.reporting import sell

    world = ReportingWorld(tmp_path / "world")
    world.broker_address = secured.address("vendor")
    vendor = closing(world.new_vendor().start())
    assert vendor.subscribed.wait(15)
    scenario = load_scenario(CONFIGS / "scenarios/normal-morning.yaml")
    machine_id = scenario.machine.config.id
    link = replace(world.machine_link(machine_id), address=secured.address(machine_id))
    runner = closing(ScenarioRunner(scenario, tmp_path / "m", link=link))
    runner.start()
    publisher = runner.machine.publisher
    assert publisher is not None
    publisher.wait_connected(15)
    sell(runner, "A1", "amy")
    publisher.wake()
    assert publisher.flush(20), "the sale was not acknowledged through the secured broker"
    assert vendor.store.count("sale") == 1 and vendor.incidents == 0


def test_a_machine_enrolled_later_gets_its_own_topics_without_a_broker_reload(secured: BrokerSetup, closing) -> None:
    """`vending broker enrol` issues one certificate; the running broker's pattern ACL covers it at once."""
    result = CliRunner().invoke(app, ["broker", "enrol", "--dir", str(secured.directory), "--machine", "M-NEW"])
    assert result.exit_code == 0, result.output
    vendor = closing(Client(secured.address("vendor"), "vendor"))
    newcomer = closing(Client(secured.address("M-NEW"), "M-NEW"))
    assert vendor.connect() and newcomer.connect()
    vendor.subscribe("vending/v1/+/sale")
    newcomer.subscribe("vending/v1/M-A/cmd/+")
    newcomer.subscribe("vending/v1/M-NEW/cmd/+")
    vendor.client.publish("vending/v1/M-A/cmd/restock", b"for A", qos=1).wait_for_publish(5)
    vendor.client.publish("vending/v1/M-NEW/cmd/restock", b"for the newcomer", qos=1).wait_for_publish(5)
    eventually(lambda: newcomer.received, what="the newcomer's own command")
    assert [topic for topic, _ in newcomer.received] == ["vending/v1/M-NEW/cmd/restock"], "it read A's commands"
    newcomer.client.publish("vending/v1/M-NEW/sale", b"its own", qos=1).wait_for_publish(5)
    forged = newcomer.client.publish("vending/v1/M-A/sale", b"posing as A", qos=1)  # denied by the ACL
    # Mosquitto either acknowledges and discards it or drops the client (it did with unbounded queues)
    eventually(lambda: forged.is_published() or not newcomer.client.is_connected(), what="the broker's answer")
    machine_a = closing(Client(secured.address("M-A"), "M-A"))  # after the forgery: its sale arrives after it
    assert machine_a.connect()
    machine_a.client.publish("vending/v1/M-A/sale", b"from A", qos=1).wait_for_publish(5)
    eventually(lambda: len(vendor.received) >= 2, what="both genuine sales")
    assert vendor.received == [("vending/v1/M-NEW/sale", b"its own"), ("vending/v1/M-A/sale", b"from A")]


@pytest.mark.parametrize("name", ["vendor", "issuer", "school", "insider", "bad.id"])
def test_a_machine_may_not_take_a_party_name_or_a_bad_id(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(app, ["broker", "setup", "--dir", str(tmp_path / "b"), "--machines", name])
    assert result.exit_code == 2
    assert repr(name) in result.output


@pytest.mark.parametrize(
    "command,reason",
    [
        (["broker", "setup", "--machines", "M-A,M-B,M-A"], "--machines: M-A is given twice"),
        (["broker", "setup", "--machines", "M-A", "--port", "99999"], "Input should be less than or equal to 65535"),
        (["keys", "dev-set", "--machines", "M-A,,M-A"], "--machines: M-A is given twice"),
    ],
)
def test_a_machine_twice_or_a_port_past_65535_is_refused_before_anything_is_written(tmp_path, command, reason):
    """A port mosquitto cannot listen on was written into mosquitto.conf; a machine twice was counted twice."""
    result = CliRunner().invoke(app, [*command, "--dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and reason in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_directory_that_holds_something_else_is_refused_and_left_as_it_was(tmp_path):
    """Given a home directory or /etc by a slip, the setup wrote its CA, config and ACL into it and, as root,
    handed the directory itself to the mosquitto user."""
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    (mine / "notes.txt").write_text("keep me")
    (tmp_path / "a-file").write_text("keep me too")
    refusals = ((mine, "holds files, and no broker setup (no ca.key)"), (tmp_path / "a-file", "not a directory"))
    for where, reason in refusals:
        result = CliRunner().invoke(app, ["broker", "setup", "--dir", str(where), "--machines", "M-A"])
        assert result.exit_code == 2 and f"--dir {where}: {reason}" in result.output, result.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    assert (mine.stat().st_uid, mine.stat().st_mode & 0o777) == (os.getuid(), 0o755)


def test_the_acl_gives_each_command_s_party_its_topic_from_the_one_declaration() -> None:
    """The school writes exactly the command topics command_set.py gives it; the vendor's tool reaches them all."""
    from firmware.app.command_set import COMMAND_SET
    from simulator.servers.broker_setup import acl_text

    sections = {
        block.split("\n", 1)[0].removeprefix("user "): block
        for block in acl_text().split("\n\n")
        if block.startswith("user")
    }
    school_writes = {line.rsplit("/", 1)[1] for line in sections["school"].splitlines() if "/cmd/" in line}
    assert school_writes == {spec.name for spec in COMMAND_SET if spec.authority == "school"} == {"set_lockout"}
    assert "topic write vending/v1/+/cmd/+" in sections["vendor"]


def test_one_machine_certificate_cannot_flood_the_broker_with_oversize_retained_messages(
    secured: BrokerSetup, closing
) -> None:
    """Issue 29: 100 MB retained on a machine's own status topic used to fill the broker's disk and the backend."""
    import time

    from simulator.servers.broker_setup import MAX_PACKET_BYTES

    vendor = closing(Client(secured.address("vendor"), "vendor-watch"))
    attacker = closing(Client(secured.address("M-B"), "M-B"))
    assert vendor.connect() and attacker.connect()
    vendor.subscribe("vending/v1/+/status")
    flood = b"x" * (4 * MAX_PACKET_BYTES)
    attacker.client.publish("vending/v1/M-B/status", flood, qos=1, retain=True)
    legit = b"y" * (MAX_PACKET_BYTES - 2048)  # the largest legitimate size (a full answer) still passes
    second = closing(Client(secured.address("M-A"), "M-A"))
    assert second.connect()
    second.client.publish("vending/v1/M-A/status", legit, qos=1, retain=True).wait_for_publish(5)
    eventually(lambda: vendor.received, what="the legitimate message")
    time.sleep(0.5)
    assert [len(payload) for _, payload in vendor.received] == [len(legit)], "the oversize message got through"
    data = secured.directory / "data"
    assert sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) < 2 * MAX_PACKET_BYTES


def test_a_machine_may_leave_a_retained_message_only_on_its_status_and_stock(secured: BrokerSetup, closing) -> None:
    """Issue 29: the ACL let a machine retain a message on each of its topics, for every later subscriber.

    The retain guard (plugins/retain_guard.c) refuses a retained message, published or left as a Last
    Will, on any other topic; the same messages unretained, and retained status and stock, pass.
    """
    import time

    attacker = closing(Client(secured.address("M-B"), "M-B"))
    attacker.client.will_set("vending/v1/M-B/alert", b"will", qos=1, retain=True)
    assert attacker.connect()
    for kind in ("sale", "denial", "summary", "batch", "status", "stock"):
        attacker.client.publish(f"vending/v1/M-B/{kind}", kind.encode(), qos=1, retain=True).wait_for_publish(5)
    attacker.client.publish("issuer/v1/M-B/settlement", b"settlement", qos=1, retain=True).wait_for_publish(5)
    attacker.client.socket().close()  # dropped without DISCONNECT: the broker sends the Last Will
    live = closing(Client(secured.address("vendor"), "vendor"))
    assert live.connect()
    live.subscribe("vending/v1/+/+")  # subscribed before: sees what is published live, retained or not
    second = closing(Client(secured.address("M-A"), "M-A"))
    assert second.connect()
    second.client.publish("vending/v1/M-A/sale", b"live sale", qos=1, retain=True).wait_for_publish(5)
    time.sleep(1.0)  # the Last Will and the refused publishes have had their chance
    late = closing(Client(secured.address("vendor-2"), "vendor-2"))
    assert late.connect()
    late.subscribe("vending/v1/+/+")
    issuer = closing(Client(secured.address("issuer"), "issuer"))
    assert issuer.connect()
    issuer.subscribe("issuer/v1/+/settlement")
    eventually(lambda: len(late.received) >= 2, what="the retained status and stock")
    time.sleep(0.5)
    assert sorted(late.received) == [("vending/v1/M-B/status", b"status"), ("vending/v1/M-B/stock", b"stock")]
    assert issuer.received == []
    assert ("vending/v1/M-A/sale", b"live sale") not in live.received  # refused, not delivered unretained
    assert second.client.is_connected()  # refused, not thrown off: its next report still goes through
    second.client.publish("vending/v1/M-A/sale", b"next", qos=1).wait_for_publish(5)
    eventually(lambda: ("vending/v1/M-A/sale", b"next") in live.received, what="the unretained sale")


def test_the_generated_config_bounds_messages_queues_and_saves() -> None:
    from simulator.servers.broker_setup import config_text

    text = config_text(Path("/b"), 8883)
    for line in ("max_packet_size 266240", "max_queued_messages 10000", "max_queued_bytes 67108864"):
        assert line in text
    assert "autosave_on_changes true" in text and "max_queued_messages 0" not in text


def test_a_certificate_cannot_take_another_party_s_client_id_or_session(secured: BrokerSetup, closing) -> None:
    """Issue 29: machine B connecting as `machine-M-A` or `vendor-backend` used to throw A off and take its session."""
    import operator
    import time
    from functools import partial

    machine_a = Client(secured.address("M-A"), "machine-M-A")
    machine_a.client.reconnect_delay_set(min_delay=1, max_delay=1)
    dropped: list[int] = []
    machine_a.client.on_disconnect = lambda *args: dropped.append(1)
    closing(machine_a)
    assert machine_a.connect()
    assert machine_a.subscribe("vending/v1/M-A/cmd/+") == 1
    vendor = closing(Client(secured.address("vendor-ops"), "operator"))
    assert vendor.connect()
    for impostor_id in ("machine-M-A", "vendor-backend", "M-A"):
        impostor = closing(Client(secured.address("M-B"), impostor_id))
        assert impostor.connect(), "the broker refused B's own certificate"
        vendor.client.publish("vending/v1/M-A/cmd/restock", impostor_id.encode(), qos=1).wait_for_publish(5)
        arrived = partial(operator.contains, machine_a.received, ("vending/v1/M-A/cmd/restock", impostor_id.encode()))
        eventually(arrived, what=f"A still receiving its commands while B is {impostor_id}")
    time.sleep(0.5)
    assert dropped == [], "the broker threw machine A off for another certificate's client"


def test_setup_again_keeps_the_ca_and_every_certificate_and_issues_only_what_the_directory_lacks(
    tmp_path: Path,
) -> None:
    """A directory written before the tools had certificates of their own gains them under its own CA.

    Without this, `--force` was the only way to get them: a new CA, and every machine enrolled again.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    require_mosquitto()  # the setup builds the retain guard (cc, mosquitto-dev)
    directory = tmp_path / "broker"
    setup = ["broker", "setup", "--dir", str(directory), "--machines", "M-A"]
    assert CliRunner().invoke(app, setup).exit_code == 0
    clients = directory / "clients"
    for tool in ("issuer-ops", "school-ops"):  # as a setup from before they existed left it
        (clients / f"{tool}.crt").unlink()
        (clients / f"{tool}.key").unlink()
    (directory / "broker.crt").unlink()  # and a broker certificate lost with its key
    (directory / "broker.key").unlink()
    kept = {path: path.read_bytes() for path in (*clients.iterdir(), directory / "ca.key", directory / "ca.crt")}

    again = CliRunner().invoke(app, [*setup, "--port", "8884"])
    assert again.exit_code == 0, again.output
    assert {path: path.read_bytes() for path in kept} == kept, "the CA's, the machine's and the parties' unchanged"
    ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for issued_to in (clients / "issuer-ops.crt", clients / "school-ops.crt", directory / "broker.crt"):
        issued = x509.load_pem_x509_certificate(issued_to.read_bytes())
        assert issued.signature_hash_algorithm is not None
        public.verify(issued.signature, issued.tbs_certificate_bytes, ec.ECDSA(issued.signature_hash_algorithm))
        assert issued_to.with_suffix(".key").stat().st_mode & 0o777 == 0o600
    assert "user issuer-ops" in (directory / "acl").read_text() and "8884" in (directory / "mosquitto.conf").read_text()


def test_a_setup_cut_short_by_a_full_disk_leaves_nothing_and_the_next_one_completes(tmp_path: Path) -> None:
    """A full disk stopped it after it made DIR and DIR/clients; the next run refused DIR as "holds files, and no
    broker setup", so the operator had to find and delete what the first had left."""
    from tests.conftest import vending_on_a_full_disk

    require_mosquitto()  # the setup builds the retain guard (cc, mosquitto-dev)
    fresh, emptied = tmp_path / "fresh", tmp_path / "empty"
    emptied.mkdir(mode=0o750)
    for directory in (fresh, emptied):
        cut = vending_on_a_full_disk(3000, "broker", "setup", "--dir", str(directory), "--machines", "M-A")
        assert cut.returncode == 2, cut.stderr
    assert not fresh.exists(), "the directory it made is gone"
    assert list(emptied.iterdir()) == [] and emptied.stat().st_mode & 0o777 == 0o750, "the user's own stays, empty"
    again = CliRunner().invoke(app, ["broker", "setup", "--dir", str(fresh), "--machines", "M-A"])
    assert again.exit_code == 0 and (fresh / "clients" / "M-A.crt").is_file(), again.output


def test_a_key_left_without_its_certificate_is_issued_again_not_a_dead_end(tmp_path: Path) -> None:
    """A run stopped between a party's key and its certificate: every later run said the key "exists already"
    and only `--force` (a new CA, every machine enrolled again) got past it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    require_mosquitto()  # the setup builds the retain guard (cc, mosquitto-dev)
    directory = tmp_path / "broker"
    setup = ["broker", "setup", "--dir", str(directory), "--machines", "M-A"]
    assert CliRunner().invoke(app, setup).exit_code == 0
    ca = (directory / "ca.crt").read_bytes()
    for certificate in (directory / "clients" / "vendor.crt", directory / "clients" / "M-A.crt"):
        certificate.unlink()  # as a run stopped between the two files left them
    again = CliRunner().invoke(app, setup)
    assert again.exit_code == 0, again.output
    enrol = CliRunner().invoke(app, ["broker", "enrol", "--dir", str(directory), "--machine", "M-B"])
    assert enrol.exit_code == 0, enrol.output
    assert (directory / "ca.crt").read_bytes() == ca, "the same CA"
    for name in ("vendor", "M-A", "M-B"):
        issued = x509.load_pem_x509_certificate((directory / "clients" / f"{name}.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "clients" / f"{name}.key").read_bytes(), None)
        assert issued.public_key() == key.public_key(), f"{name}: the certificate is its key's"
