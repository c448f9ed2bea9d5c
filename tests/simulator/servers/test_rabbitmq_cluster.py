"""Issue 33: a three-node RabbitMQ cluster speaking MQTT with today's rights, backends as competing consumers."""

from __future__ import annotations

import ssl
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from firmware.reporting.mqtt import make_client
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.servers.broker_setup import IDENTITIES, INSIDERS
from simulator.servers.rabbitmq import CLUSTER, RabbitCluster
from tests.support.reporting import attached_runner, sell_many
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("rabbitmq")


def _connect(cluster: RabbitCluster, user: str, client_id: str) -> Any:
    """An MQTT client of ``user`` on the first node, connected; its refusals and deliveries recorded."""
    address = cluster.access().party(user)
    client = make_client(address, client_id, persistent=False)
    client.refused, client.granted, client.dropped = [], threading.Event(), threading.Event()
    client.on_subscribe = lambda c, u, mid, codes, p: (client.refused.extend(x for x in codes if x.is_failure),
                                                       client.granted.set())  # fmt: skip
    client.on_disconnect = lambda *args: client.dropped.set()
    client.connect(*address.endpoint, keepalive=15)
    client.loop_start()
    return client


def _amqp(cluster: RabbitCluster, user: str) -> Any:
    import pika

    return pika.BlockingConnection(cluster.access().amqp(user).parameters()[0])


def test_rights_follow_the_mosquitto_acl_and_nobody_has_a_password(rabbitmq: RabbitCluster, closing):
    rabbitmq.enrol(["RQ-A", "RQ-B"])
    rabbitmq.purge("vendor.reports")
    users = rabbitmq.ctl(rabbitmq.nodes[0], "list_users", "--quiet").stdout.split()
    assert "guest" not in users
    assert {*(n for names in IDENTITIES.values() for n in names), *INSIDERS, "RQ-A", "RQ-B"} <= set(users)
    machine = _connect(rabbitmq, "RQ-A", "machine-RQ-A")
    try:
        machine.publish("vending/v1/RQ-A/sale", b"{}", qos=1).wait_for_publish(10)
        eventually(lambda: rabbitmq.queued("vendor.reports") == 1, what="its own report in the vendor's queue")
        machine.publish("vending/v1/RQ-B/sale", b"{}", qos=1)  # as another machine: the connection is closed
        assert machine.dropped.wait(10)
    finally:
        machine.disconnect()
        machine.loop_stop()
    spy = _connect(rabbitmq, "RQ-A", "machine-RQ-A")
    try:  # another machine's commands: RabbitMQ 3.10 closes the connection rather than refuse in the SUBACK
        spy.subscribe("vending/v1/RQ-B/cmd/+", qos=1)
        eventually(lambda: spy.dropped.is_set() or spy.refused, what="the subscription refused")
        assert not (spy.granted.is_set() and not spy.refused)
    finally:
        spy.disconnect()
        spy.loop_stop()
    assert rabbitmq.queued("vendor.reports") == 1, "the forged report never reached the queue"
    vendor = _amqp(rabbitmq, "vendor")
    try:
        import pika.exceptions

        channel = vendor.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            channel.basic_publish("amq.topic", "issuer.v1.RQ-A.ack", b"{}")  # the vendor never speaks for the issuer
            channel.basic_get("vendor.reports")  # the refusal arrives asynchronously: the next call meets it
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            vendor.channel().basic_get("issuer.reports")  # nor reads the issuer's queue
    finally:
        vendor.close()
    context = ssl.create_default_context(cafile=str(rabbitmq.setup.directory / "ca.crt"))
    import socket

    with socket.create_connection(("127.0.0.1", rabbitmq.nodes[0].mqtts)) as raw:  # no certificate: no session
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0f\x00\x00")
                assert tls.recv(4) == b""


def test_two_backends_compete_and_a_node_and_an_instance_die_mid_day_exactly_once(
    rabbitmq: RabbitCluster, tmp_path: Path, closing
):
    rabbitmq.purge("vendor.reports", "issuer.reports")
    world = closing(ReportingWorld(tmp_path / "world", broker=CLUSTER, cluster=rabbitmq).start())
    second = closing(world.new_vendor(world.workdir / "vendor.db", identity="vendor-2").start())
    assert second.subscribed.wait(30)
    with attached_runner(world, tmp_path) as runner:
        sell_many(runner, 20)
        rabbitmq.kill(1)  # the node the machine reached first: it moves on to the next
        world.vendor_down()  # one instance crashes with whatever it had not acked
        sell_many(runner, 20)
        assert world.publisher is not None and world.publisher.flush(90), "drained through the two nodes left"
        rabbitmq.revive(1)
        assert rabbitmq.registry_whole(), "the revived node is a member of the MQTT client-id registry again"
        world.vendor_up()
        sell_many(runner, 5)
        assert world.publisher.flush(60)
        produced = runner.machine.books.journal.last_seq("vendor")
        machine = runner.machine.controller.config.id
        assert world.vendor is not None
        eventually(lambda: world.vendor.store.count() == produced, timeout=60, what="every report stored")
        rows = world.vendor.store.execute("SELECT COUNT(*), COUNT(DISTINCT seq) FROM reports")[0]
        assert rows == (produced, produced)
        assert world.vendor.store.acked(machine) == produced
        sales = world.vendor.store.execute("SELECT COUNT(DISTINCT txn) FROM sales")[0][0]
        assert sales == runner.result.sales


def test_a_node_left_out_of_the_mqtt_registry_is_added_back(rabbitmq: RabbitCluster):
    """Nodes that boot together can leave one out of 3.10's client-id registry; the cluster adds it back."""
    first, left_out = rabbitmq.nodes[0], rabbitmq.nodes[2]
    rabbitmq.ctl(first, "eval", f"ra:remove_member(mqtt_node:server_id(), {{mqtt_node, '{left_out.name}'}}).")
    assert not rabbitmq.registry_whole(), "the registry lacks the node (what the boot race leaves)"
    rabbitmq.mend_registry()  # the start's budget: 60 s ran out twice in full parallel runs, all views whole after
    assert rabbitmq.registry_whole()
    assert rabbitmq.takes_mqtt(left_out), "the node added back takes MQTT sessions"


def test_a_node_whose_registry_server_went_deaf_is_mended(rabbitmq: RabbitCluster):
    """A server that does not answer (reproduced by suspending it) is restarted by the mend; one that a
    restart leaves deaf (seen under load, after a restart on a log that says it left) is replaced: its
    data deleted, removed and added back by a healthy node, which sends it the log at once."""
    from simulator.servers import mqtt_registry

    deaf = rabbitmq.nodes[1]
    for mend in (rabbitmq.mend_registry, lambda: mqtt_registry.replace(rabbitmq._evaluators(), deaf.name)):
        rabbitmq.ctl(deaf, "eval", "sys:suspend(whereis(mqtt_node)).")
        assert not rabbitmq.registry_whole(), "the suspended server does not answer"
        mend()
        eventually(rabbitmq.registry_whole, timeout=60, what="every node's view of the registry whole, unmended")
        assert rabbitmq.takes_mqtt(deaf), "the node takes MQTT sessions again"


def test_a_machine_s_session_queue_is_elected_at_enrolment_and_its_first_session_uses_it(rabbitmq: RabbitCluster):
    """Declared when the machine is enrolled, not on its first connect (which may meet a node dying: a quorum
    queue declared then can stay leaderless for good in 3.10), and the plugin takes it as its own.

    The QoS 0 subscription an account-mode machine adds (its authorisation answers) gets a queue of its
    own from the plugin: a classic, transient one that goes with the connection, no Raft group to strand.
    """
    from firmware.reporting import topics
    from firmware.reporting.mqtt import machine_client_id
    from simulator.servers.rabbit_rights import SESSION_TTL_MS, session_queue_name

    def queue(name: str, *columns: str) -> list[str]:
        out = rabbitmq.ctl(rabbitmq.running_node(), "list_queues", "name", *columns, "--quiet").stdout
        return next((line.split("\t") for line in out.splitlines() if line.split("\t")[0] == name), [])

    def session() -> list[str]:
        return queue(session_queue_name("RQ-S"), "arguments", "leader")

    rabbitmq.enrol(["RQ-S"])
    name, arguments, leader = session()
    assert name == "mqtt-subscription-machine-RQ-Sqos1" and leader in {node.name for node in rabbitmq.nodes}
    assert f'"x-expires",{SESSION_TTL_MS}' in arguments and '"x-queue-type","quorum"' in arguments
    machine = rabbitmq.access().machine("RQ-S")
    client = make_client(machine, machine_client_id("RQ-S"))  # persistent, as a machine's publisher connects
    granted: list[list[bool]] = []
    client.on_subscribe = lambda c, u, mid, codes, p: granted.append([not code.is_failure for code in codes])
    answers = (topics.issuer("RQ-S", topics.AUTH_ANSWER), 0)  # what an account-mode machine adds
    listening = [("vending/v1/RQ-S/ack", 1), ("vending/v1/RQ-S/cmd/+", 1), answers]
    client.on_connect = lambda c, *args: c.subscribe(listening)
    client.connect(*machine.endpoint, keepalive=15)
    client.loop_start()
    try:
        eventually(lambda: granted == [[True, True, True]], what="the subscriptions granted in the declared session")
        qos0 = name.removesuffix("qos1") + "qos0"
        assert queue(qos0, "durable", "auto_delete", "type") == [qos0, "false", "true", "classic"]
    finally:
        client.disconnect()
        client.loop_stop()
    assert session() == [name, arguments, leader], "the plugin kept the queue it was given: no second declaration"


def test_an_authority_s_retained_push_reaches_a_machine_on_every_node(rabbitmq: RabbitCluster):
    """RabbitMQ 3.10 keeps retained messages per node: the push goes to each, so any node hands it out."""
    from dataclasses import replace

    from simulator.backends.push import publish

    rabbitmq.enrol(["RQ-C"])
    access = rabbitmq.access()
    publish(access.party("issuer"), [("issuer/v1/hotlist", "list-v7", True)], "issuer")
    machine = access.machine("RQ-C")
    for host, port in machine.endpoints:  # a fresh session on each node asks for it, until the node has it stored
        eventually(partial(_retained_on, replace(machine, host=host, port=port, alternates=())),
                   what=f"the retained list on the node at port {port}")  # fmt: skip


def _retained_on(address: Any) -> bool:
    """Whether a new subscription on this one node is handed the retained list (within 2 s)."""
    got: list[bytes] = []
    arrived = threading.Event()
    client = make_client(address, "machine-RQ-C", persistent=False)

    def delivered(c: Any, u: Any, message: Any) -> None:
        got.append(bytes(message.payload))
        arrived.set()

    client.on_message = delivered
    client.on_connect = lambda c, *args: c.subscribe("issuer/v1/hotlist", qos=1)
    client.connect(*address.endpoint, keepalive=15)
    client.loop_start()
    try:
        return arrived.wait(2.0) and got == [b"list-v7"]
    finally:
        client.disconnect()
        client.loop_stop()
