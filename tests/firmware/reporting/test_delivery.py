"""Exactly-once delivery, remote commands, liveness and keys, against both brokers."""

from __future__ import annotations

import json

import pytest

from firmware.app.command_set import COMMANDS
from simulator.backends.store import StoreQueries
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT
from tests.support.reporting import attached_runner, broker_client, sell, signed_command
from tests.support.waiting import eventually

MORNING = ROOT / "configs/scenarios/normal-morning.yaml"


def vendor_store(world: ReportingWorld) -> StoreQueries:
    assert world.vendor is not None, "the vendor backend is down"
    return world.vendor.store


def backend_sales(world: ReportingWorld) -> list[tuple]:
    return vendor_store(world).execute("SELECT machine, seq, txn FROM sales ORDER BY seq")


def test_outage_then_reconnect_delivers_each_report_once(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        sell(runner, "A1", "amy")
        assert world.publisher.flush(20)
        world.broker_down()
        for slot in ("A3", "D1", "E1", "E2"):
            sell(runner, slot, "lin")
        assert world.publisher.depth() == 4  # 4 sales kept while the broker is away
        world.broker_up()
        assert world.publisher.flush(30), f"outbox still holds {world.publisher.depth()}"
        rows = backend_sales(world)
        assert len(rows) == 5 == runner.result.sales
        assert len({txn for _, _, txn in rows}) == 5
        seqs = [seq for _, (seq,) in enumerate(world.vendor.store.execute("SELECT seq FROM reports ORDER BY seq"))]
        assert seqs == list(range(1, len(seqs) + 1)), "a gap or duplicate in the vendor's sequence"


def test_redelivered_reports_are_stored_once(world, capture, tmp_path):
    """The backend sees every report twice (a resend after a lost ack) and keeps one copy."""
    with attached_runner(world, tmp_path) as runner:
        sell(runner, "A1", "amy")
        sell(runner, "A3", "ben")
        assert world.publisher.flush(20)
        sent = [(t, p) for t, p, _ in capture.messages if t.split("/")[-1] in ("sale", "stock", "batch")]
        assert sent
        stored = world.vendor.store.count()
        for topic, payload in sent:  # replay every signed report as a duplicate delivery
            world.vendor.receive(topic, payload)
        assert len(backend_sales(world)) == 2
        assert world.vendor.store.count() == stored
        assert world.vendor.incidents == 0, "a byte-identical redelivery is not an incident"


def publish_command(world: ReportingWorld, machine: str, name: str, payload: bytes) -> None:
    client = broker_client(world, "operator")
    client.publish(f"vending/v1/{machine}/cmd/{name}", payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def run_command(world: ReportingWorld, runner: ScenarioRunner, name: str, payload: bytes) -> dict:
    machine = runner.machine.controller.config.id
    before = vendor_store(world).count("cmd-result")

    def answered() -> bool:
        runner.machine.tick()  # the runner applies commands between steps, on the controller's thread
        return vendor_store(world).count("cmd-result") > before

    # as an operator's tool does: at least once on the wire (the embedded broker may drop a QoS 1
    # message under load), the same message again; the machine applies a repeated command id once
    for _attempt in range(4):
        publish_command(world, machine, name, payload)
        try:
            eventually(answered, timeout=5.0, what="cmd-result")
            break
        except AssertionError:
            continue
    eventually(answered, what="cmd-result")
    row = vendor_store(world).execute("SELECT payload FROM reports WHERE kind = 'cmd-result' ORDER BY seq DESC")
    answer: dict = json.loads(row[0][0])
    return answer


BAD_COMMANDS = [
    ("restock", b"{not json", "payload is not JSON"),
    ("restock", {"id": "c2", "slots": {"A1": "ten"}}, "slots.A1: Input should be a valid integer"),
    ("restock", {"id": "c3", "slots": {"Z9": 3}}, "unknown slot 'Z9'"),
    ("restock", {"id": "c4", "slots": {"A1": 99}}, "slots.A1: count 99 is outside 0..10"),
    ("set_price", {"id": "c5", "slot": "A1", "price": -5}, "price: Input should be greater than 0"),
    ("set_price", {"id": "c6", "slot": "A1", "price": 30, "colour": "red"}, "colour: unknown key"),
    ("self_destruct", {"id": "c7"}, "unknown command 'self_destruct'"),
    ("restock", {"id": "c8", "slots": {"A1": 1}, "pad": "x" * 5000}, "larger than 4096 bytes"),
    ("restock", b'{"id": "c9", "slots": {"A1": 1}}', "not a signed message"),
]


def test_a_command_waits_for_the_customer_at_the_machine_the_price_shown_is_the_price_charged(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine
        machine.controller.select("A1")  # the display says NT$25; the machine waits for the card
        assert "NT$25" in runner.display.text() and machine.controller.serving
        payload = signed_command(world, runner, "set_price", {"id": "p-mid", "slot": "A1", "price": 30})
        publish_command(world, machine.controller.config.id, "set_price", payload)
        assert machine.inbox is not None
        eventually(lambda: not machine.inbox.commands.empty(), what="the command at the machine")
        machine.tick()
        assert not machine.inbox.commands.empty(), "kept while the customer is at the machine"
        assert machine.books.inventory.get("A1").price == 25

        sell(runner, "A1", "amy")
        assert runner.machine.controller.last_transaction.outcome == "vended"
        assert machine.books.wallet.account(runner.scenario.cards["amy"].uid).balance.amount == 75, "charged NT$25"
        machine.tick()  # the session is over: the command applies and is answered
        assert machine.books.inventory.get("A1").price == 30
        eventually(lambda: vendor_store(world).count("cmd-result") > 0, what="the command's answer")


@pytest.mark.parametrize("name,body,reason", BAD_COMMANDS, ids=[r for _, _, r in BAD_COMMANDS])
def test_malformed_command_is_refused_and_changes_nothing(world, tmp_path, name, body, reason):
    with attached_runner(world, tmp_path) as runner:
        before = (runner.machine.books.inventory.all(), runner.machine.invariant_total())
        signed_as = name if name in COMMANDS else "restock"
        payload = body if isinstance(body, bytes) else signed_command(world, runner, signed_as, body)
        result = run_command(world, runner, name, payload)
        assert result["ok"] is False
        assert reason in result["reason"]
        assert (runner.machine.books.inventory.all(), runner.machine.invariant_total()) == before


def test_commands_apply_atomically_once(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        inventory = runner.machine.books.inventory

        def send(name: str, body: dict) -> dict:
            return run_command(world, runner, name, signed_command(world, runner, name, body))

        assert send("set_price", {"id": "p1", "slot": "A1", "price": 30})["ok"]
        assert inventory.get("A1").price == 30
        assert send("disable_slot", {"id": "d1", "slot": "C1"})["ok"]
        runner.machine.controller.select("C1")
        assert runner.machine.controller.last_transaction.reason == "slot_disabled"
        # one restock with a bad slot changes no slot at all
        refused = send("restock", {"id": "r1", "slots": {"A1": 10, "Q1": 2}})
        assert not refused["ok"] and inventory.get("A1").stock == 8
        again = signed_command(world, runner, "restock", {"id": "r2", "slots": {"A1": 10, "C2": 12}})
        assert run_command(world, runner, "restock", again)["ok"]
        assert (inventory.get("A1").stock, inventory.get("C2").stock) == (10, 12)
        # the same command again (a QoS 1 redelivery) is answered from the journal, not applied twice
        inventory.set_stock("A1", 9)
        assert world.commands.handle("restock", again)["ok"]
        assert inventory.get("A1").stock == 9


def test_set_lockout_replaces_windows_and_survives_restart(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        window = {"profiles": ["student"], "categories": ["dairy"], "from": "07:00", "to": "08:00"}
        command = signed_command(world, runner, "set_lockout", {"id": "l1", "lockouts": [window]}, signer="school")
        assert run_command(world, runner, "set_lockout", command)["ok"]
        sell(runner, "A1", "amy")  # 07:30, dairy, student: now locked out
        assert runner.machine.controller.last_transaction.reason == "lunch_lockout"
        runner.machine.controller.cancel()
        runner.power_cycle()
        runner.clock.set(runner.clock.now().replace(hour=7, minute=45))
        sell(runner, "A1", "amy")
        assert runner.machine.controller.last_transaction.reason == "lunch_lockout"
        backwards = {"profiles": ["student"], "categories": ["snack"], "from": "13:00", "to": "11:00"}
        bad = signed_command(world, runner, "set_lockout", {"id": "l2", "lockouts": [backwards]}, signer="school")
        refused = run_command(world, runner, "set_lockout", bad)
        assert not refused["ok"] and "must be before" in refused["reason"]


def test_backend_marks_silent_machines_offline(world, tmp_path):
    with attached_runner(world, tmp_path):
        world.publisher.heartbeat_s = 0.0  # a heartbeat on every pass of the publisher
        world.publisher.wake()
        rows = eventually(
            lambda: world.vendor.store.execute(
                "SELECT machine, state, last_heartbeat FROM machines WHERE last_heartbeat IS NOT NULL"
            ),
            what="heartbeat",
        )
        machine, state, _ = rows[0]
        assert state == "online"
        assert world.vendor.mark_silent(90.0) == [], "heard just now: still online"
        world.publisher.set_link(False)  # the machine goes quiet (no Will on a clean disconnect either way)
        world.vendor.silence_s = 0.3  # the running backend's own watch, on a short fuse for the test
        eventually(
            lambda: (
                world.vendor.store.execute("SELECT state FROM machines WHERE machine = ?", (machine,))[0][0]
                == "offline"
            ),
            what="the running backend marking the silent machine offline",
        )


def test_a_refunded_sale_reaches_the_vendor_with_its_own_visit_pseudonym_and_profile(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        runner.dispenser.jam("A1")
        sell(runner, "A1", "amy")
        sell(runner, "A1", "amy")
        assert world.publisher.flush(20)
        rows = world.vendor.store.execute("SELECT outcome, pseudonym, profile FROM sales ORDER BY seq")
        assert [r[0] for r in rows] == ["refunded", "vended"]
        assert None not in (rows[0][1], rows[1][1]) and rows[0][2] == "student"
        assert rows[0][1] != rows[1][1], "two visits of one card are two pseudonyms: nothing links them"
