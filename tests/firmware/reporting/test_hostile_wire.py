"""Anyone on the broker publishes the hostile corpus at every topic the machine and the backends read.

Afterwards nothing was deleted or changed by it, every genuine report still reaches the backend
exactly once, the machine still sells, and every thread of every process is alive.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from firmware.app.command_set import COMMANDS
from firmware.reporting import topics
from firmware.reporting.supervised import SupervisedThread
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from simulator.servers.broker_setup import MAX_PACKET_BYTES
from tests.hostile.corpus import HOSTILE
from tests.support.reporting import attached_runner, broker_client, sell
from tests.support.waiting import eventually

BACKEND_KINDS = ("sale", "denial", "stock", "alert", "cmd-result", "summary", "status", "heartbeat")


def attacker(world: ReportingWorld) -> mqtt.Client:
    return broker_client(world, "attacker")


def corpus(world: ReportingWorld) -> list[bytes]:
    """The hostile payloads that reach the receivers: the generated Mosquitto config stops anything over its
    packet limit at the broker and drops the sender (tests/simulator/servers/test_broker_setup.py proves it)."""
    payloads = [payload for _, payload in HOSTILE]
    if world.broker == "mosquitto":
        return [payload for payload in payloads if len(payload) + 1024 < MAX_PACKET_BYTES]
    return payloads


def publish_all(client: mqtt.Client, topic_names: list[str], payloads: list[bytes], retain: bool = False) -> None:
    for topic in topic_names:
        for payload in payloads:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)


def alive(*threads: threading.Thread | SupervisedThread | None) -> bool:
    return all(thread is not None and thread.is_alive() for thread in threads)


def test_the_hostile_corpus_on_every_inbound_topic_changes_nothing_and_stops_nothing(
    world: ReportingWorld, tmp_path: Path
) -> None:
    with attached_runner(world, tmp_path) as runner:
        publisher = world.publisher
        assert publisher is not None
        machine = runner.machine.controller.config.id
        sell(runner, "A1", "amy")
        assert publisher.flush(20)
        client = attacker(world)
        sent = corpus(world)
        try:
            assert world.vendor is not None and world.issuer is not None
            vendor, issuer = world.vendor, world.issuer
            publish_all(client, [topics.vendor(machine, kind) for kind in BACKEND_KINDS], sent)
            publish_all(client, [topics.issuer(machine, "settlement")], sent)
            expected = len(sent) * len(BACKEND_KINDS), len(sent)

            def refused() -> tuple[int, int]:
                return vendor.incidents + vendor.errors, issuer.incidents + issuer.errors

            eventually(
                lambda: refused()[0] >= expected[0] and refused()[1] >= expected[1],
                timeout=60,
                what=lambda: f"backends refused every hostile message {expected} (refused so far: {refused()})",
            )
            recorded = vendor.store.execute("SELECT COUNT(*) FROM incidents")[0][0]
            assert 0 < recorded <= 60, "incidents are recorded, within the per-minute cap"
        finally:
            client.disconnect()
            client.loop_stop()
        world.vendor_down()  # from here only the attacker acks: nothing may be deleted
        sell(runner, "A3", "ben")
        sell(runner, "D1", "lin")
        waiting = publisher.depth()
        stock = runner.machine.books.inventory.stock()
        client = attacker(world)
        sent = corpus(world)
        try:
            publish_all(client, [topics.command(machine, name) for name in (*COMMANDS, "bogus")], sent)
            publish_all(client, [topics.ack("vendor", machine), topics.ack("issuer", machine)], sent)
            acks = 2 * len(sent)

            def all_acks_seen() -> bool:
                runner.machine.tick()  # applies the commands on the controller's thread
                return publisher.refused_acks + publisher.handler_errors >= acks  # none is signed: all refused

            eventually(
                all_acks_seen,
                timeout=60,
                what=lambda: (
                    f"every hostile ack handled ({acks}; so far {publisher.refused_acks} refused, "
                    f"{publisher.handler_errors} errors)"
                ),
            )
            assert publisher.depth() >= waiting, "a forged ack deleted reports the backend never stored"
            assert runner.machine.books.inventory.stock() == stock, "a hostile command changed the planogram"
            world.vendor_up()
        finally:
            client.disconnect()
            client.loop_stop()
        sell(runner, "E1", "lin")  # the machine still sells
        runner.machine.tick()
        assert publisher.flush(30), f"outbox still holds {publisher.depth()}"
        vendor = world.vendor
        assert vendor is not None
        produced = runner.machine.books.journal.last_seq("vendor")
        stored = vendor.store.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM reports WHERE machine = ?", (machine,))
        assert stored[0] == (produced, 1, produced), "every genuine report once, and nothing else"
        assert vendor.store.execute("SELECT COUNT(*) FROM sales WHERE outcome = 'vended'")[0][0] == 4
        assert alive(publisher._thread, vendor._writer, issuer._writer)
        assert alive(publisher._client._thread, vendor.client._thread, issuer.client._thread)


def test_a_retained_poison_command_is_ignored_on_every_boot_and_the_machine_sells(
    world: ReportingWorld, tmp_path: Path
) -> None:
    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        client = attacker(world)
        guarded = (
            world.access is not None and world.access.setup is not None
        )  # the generated Mosquitto: its retain guard refuses the poison
        try:
            client.publish(topics.command(machine, "restock"), b"[" * 2000, qos=1, retain=True).wait_for_publish(10)
            for _ in range(2):
                runner.power_cycle()  # reconnects and receives the retained poison again
                assert world.publisher is not None and world.publisher.wait_connected(15)
                if guarded:  # never retained, so never delivered: the machine has nothing to ignore
                    time.sleep(1.0)
                    assert not poison_seen(runner, world), "the broker kept a retained command"
                else:
                    eventually(lambda: poison_seen(runner, world), what="the retained poison, seen on this boot")
                sell(runner, "A1", "amy")
                assert runner.machine.controller.last_transaction is not None
                assert runner.machine.controller.last_transaction.outcome == "vended"
        finally:
            client.publish(topics.command(machine, "restock"), b"", qos=1, retain=True).wait_for_publish(10)
            client.disconnect()
            client.loop_stop()
        assert world.publisher is not None and world.publisher.flush(30)


def poison_seen(runner: ScenarioRunner, world: ReportingWorld) -> bool:
    """Apply what arrived (as between two steps); true once this boot's command processor met the poison."""
    runner.machine.tick()
    return world.commands is not None and world.commands.unanswered >= 1


def test_a_dead_worker_thread_is_restarted_and_reported_in_the_heartbeat(world, capture, tmp_path: Path) -> None:
    with attached_runner(world, tmp_path) as runner:
        publisher = world.publisher
        assert publisher is not None
        publisher._stop.set()  # the worker leaves its loop: as far as the machine knows, it died
        eventually(lambda: not publisher._thread.is_alive(), what="the worker died")
        publisher._stop.clear()
        publisher.heartbeat_s = 0.0
        publisher.wake()  # the controller's thread supervises it after every event
        assert publisher._thread.is_alive() and publisher.restarts == 1
        sell(runner, "A1", "amy")
        assert publisher.flush(20), "the restarted worker drains the outbox"

        def restarts_reported() -> bool:
            beats = [json.loads(e["payload"]) for e in capture.json_of("/heartbeat")]
            return any(beat["restarts"] == 1 for beat in beats)

        eventually(restarts_reported, what="a heartbeat saying restarts: 1")
