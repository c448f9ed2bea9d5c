"""The attacker is on the broker with valid transport credentials: only signatures stand in the way.

Every forged, replayed, expired, wrong-signer and wrong-machine command is refused with the reason and
the state unchanged; forged acks delete nothing and every sale still reaches the backend; forged sales
and settlements are refused and recorded as incidents, never stored and never acked.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from firmware.identity.signing import Identity
from firmware.reporting import topics
from firmware.reporting.sealed import seal
from firmware.reporting.signed import canonical, compose_ack, sign_text
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.support.reporting import attached_runner, broker_client, sell, signed_command
from tests.support.waiting import eventually

RESTOCK = {"slots": {"A1": 10}}
LOCKOUT_NONE: dict[str, Any] = {"lockouts": []}


def on_broker(world: ReportingWorld, topic: str, payload: bytes | str, client_id: str = "insider") -> None:
    client = broker_client(world, client_id)
    client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def machine_state(runner: ScenarioRunner) -> tuple:
    controller = runner.machine.controller
    return runner.machine.books.inventory.all(), runner.machine.invariant_total(), controller.config.lockouts


def stranger() -> Identity:
    return Identity.generate("vendor")  # calls itself the vendor; the machine has never seen its key


CASES = [
    ("a key the machine does not know", "restock", RESTOCK, {"signer": stranger()}, "does not know"),
    ("the vendor setting lockouts", "set_lockout", LOCKOUT_NONE, {"signer": "vendor"}, "who has no say here"),
    ("the issuer restocking", "restock", RESTOCK, {"signer": "issuer"}, "who has no say here"),
    ("the school restocking", "restock", RESTOCK, {"signer": "school"}, "who has no say here"),
    ("another machine's command", "restock", RESTOCK, {"machine": "TPE-OTHER-01"}, "is for machine TPE-OTHER-01"),
    ("expired", "restock", RESTOCK, {"issued_at": -2 * 3600}, "expired at"),
    ("issued in the future", "restock", RESTOCK, {"issued_at": 3600}, "in the future"),
    ("living too long", "restock", RESTOCK, {"lifetime": timedelta(days=2)}, "may live at most 3600 s"),
]


@pytest.mark.parametrize("case,name,body,how,reason", CASES, ids=[c[0] for c in CASES])
def test_commands_without_authority_are_refused_with_the_reason_and_change_nothing(
    world, tmp_path, case, name, body, how, reason
):
    with attached_runner(world, tmp_path) as runner:
        before = machine_state(runner)
        options = dict(how)
        if "issued_at" in options:
            options["issued_at"] = runner.clock.now() + timedelta(seconds=options["issued_at"])
        answer = world.commands.handle(name, signed_command(world, runner, name, body, **options))
        assert answer is not None and answer["ok"] is False, case
        assert reason in answer["reason"], answer
        assert machine_state(runner) == before


def test_a_tampered_or_re_addressed_command_is_refused(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        before = machine_state(runner)
        genuine = json.loads(signed_command(world, runner, "restock", RESTOCK))
        tampered = dict(genuine, payload=genuine["payload"].replace('"A1":10', '"A1":0'))
        answer = world.commands.handle("restock", json.dumps(tampered).encode())
        assert answer is not None and "bad signature" in answer["reason"]
        moved = world.commands.handle("set_price", json.dumps(genuine).encode())  # a restock sent as set_price
        assert moved is not None and "the signed command is 'restock'" in moved["reason"]
        assert machine_state(runner) == before


def test_replayed_and_out_of_order_commands_are_refused_even_after_a_restart(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        inventory = runner.machine.books.inventory
        first = signed_command(world, runner, "set_price", {"id": "p1", "slot": "A1", "price": 30}, counter=100)
        assert world.commands.handle("set_price", first)["ok"]
        inventory.set_price("A1", 25)  # a technician changes it back on the machine
        assert world.commands.handle("set_price", first)["ok"]  # the same message again: the stored answer
        assert inventory.get("A1").price == 25, "a redelivered command was applied twice"
        older = signed_command(world, runner, "set_price", {"id": "p0", "slot": "A1", "price": 40}, counter=99)
        assert (
            "replayed or out of order: counter 99, last used 100" in world.commands.handle("set_price", older)["reason"]
        )
        runner.power_cycle()
        assert world.publisher is not None and world.publisher.wait_connected(15)
        again = signed_command(world, runner, "set_price", {"id": "p2", "slot": "A1", "price": 40}, counter=100)
        assert "replayed or out of order" in world.commands.handle("set_price", again)["reason"]
        assert inventory.get("A1").price == 25
        # each party has its own counter: the school's first command is fine
        school = signed_command(world, runner, "set_lockout", {"id": "l1", **LOCKOUT_NONE}, signer="school", counter=1)
        assert world.commands.handle("set_lockout", school)["ok"]


def test_a_signer_is_rate_limited(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        answers = [
            world.commands.handle("restock", signed_command(world, runner, "restock", {"id": f"r{i}", **RESTOCK}))
            for i in range(8)
        ]
        assert [a["ok"] for a in answers[:5]] == [True] * 5
        assert (
            not answers[-1]["ok"]
            and "rate limited: at most 12 commands a minute from the vendor" in answers[-1]["reason"]
        )


def test_the_lunch_lockout_cannot_be_lifted_by_an_insider_on_the_broker(world, tmp_path):
    """The issue's first attack: an anonymous set_lockout [] and a student buying a snack at 11:22."""
    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        on_broker(world, topics.command(machine, "set_lockout"), b'{"id": "x", "lockouts": []}')
        vendor_signed = signed_command(world, runner, "set_lockout", {"id": "y", **LOCKOUT_NONE}, signer="vendor")
        on_broker(world, topics.command(machine, "set_lockout"), vendor_signed)

        def answered() -> bool:
            runner.machine.tick()
            return world.vendor.store.count("cmd-result") >= 2

        eventually(answered, what="both refusals answered")
        reasons = [
            json.loads(p)["reason"]
            for (p,) in world.vendor.store.execute("SELECT payload FROM reports WHERE kind = 'cmd-result'")
        ]
        assert any("not a signed message" in r for r in reasons) and any("who has no say here" in r for r in reasons)
        runner.clock.set(runner.clock.now().replace(hour=11, minute=22))
        sell(runner, "C1", "amy")
        assert runner.machine.controller.last_transaction.reason == "lunch_lockout"


def test_forged_acks_delete_nothing_and_every_sale_still_arrives(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        publisher = world.publisher
        machine = runner.machine.controller.config.id
        world.vendor_down()
        for slot in ("A1", "A3", "D1"):
            sell(runner, slot, "lin")
        assert publisher.wait_published(20)
        waiting = publisher.depth()
        forged = [
            (topics.ack("vendor", machine), compose_ack(stranger(), machine, 3)),  # an unknown key
            (
                topics.ack("vendor", machine),
                compose_ack(world.keys.issuer, machine, 3),
            ),  # the issuer, on the vendor's stream
            (
                topics.ack("issuer", machine),
                compose_ack(world.keys.vendor, machine, 1),
            ),  # the vendor deleting settlements
            (topics.ack("vendor", machine), compose_ack(world.keys.vendor, "TPE-OTHER-01", 3)),  # another machine's ack
            (topics.ack("vendor", machine), compose_ack(world.keys.vendor, machine, 1_000_000)),  # beyond what was sent
        ]
        refused = publisher.refused_acks
        for topic, payload in forged:
            on_broker(world, topic, payload)
        eventually(lambda: publisher.refused_acks >= refused + len(forged), what="every forged ack refused")
        assert publisher.depth() == waiting, "a forged ack deleted reports"
        world.vendor_up()
        assert publisher.flush(30)
        assert world.vendor.store.execute("SELECT COUNT(*) FROM sales WHERE outcome = 'vended'")[0][0] == 3


def test_forged_reports_and_settlements_are_incidents_never_stored(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        publisher = world.publisher
        machine = runner.machine.controller.config.id
        sell(runner, "A1", "amy")
        assert publisher.flush(20)
        vendor, issuer = world.vendor, world.issuer
        stored = vendor.store.execute("SELECT seq, payload FROM reports ORDER BY seq")
        fake = {
            "machine": machine,
            "seq": len(stored) + 1,
            "time": "2026-03-02T07:31+08:00",
            "txn": "x",
            "slot": "A1",
            "product": "milk-lowfat-290",
            "price": 1,
            "currency": "TWD",
            "outcome": "vended",
            "pseudonym": None,
            "profile": "student",
        }
        sale_seq, sale = next((seq, json.loads(text)) for seq, text in stored if "outcome" in json.loads(text))
        conflicting = dict(sale, price=1)  # a second, different report at a stored seq
        other = world.keys.machine("TPE-OTHER-01")  # enrolled, but not this machine
        sale_topic = topics.vendor(machine, "sale")
        forgeries = [
            (sale_topic, canonical(fake)),  # unsigned
            (sale_topic, sign_text(stranger(), canonical(fake))),
            (sale_topic, sign_text(other, canonical(fake))),
            (
                topics.vendor("TPE-NOBODY-01", "sale"),
                sign_text(stranger(), canonical(dict(fake, machine="TPE-NOBODY-01"))),
            ),
            (sale_topic, sign_text(world.keys.machine(machine), canonical(conflicting))),  # as if the machine lied
        ]
        document = {
            "machine": machine,
            "day": "2026-03-02",
            "currency": "TWD",
            "cards": [{"uid": "04A1B2C3D4E5F6", "amount": 5000, "count": 1}],
        }
        sealed = seal(
            stranger().sign(canonical(document)), world.keys.seal_public
        )  # sealed to the public issuer-seal.pub
        settlement = {"machine": machine, "seq": 1, "day": "2026-03-02", "sealed": sealed}
        forgeries.append((topics.issuer(machine, "settlement"), sign_text(stranger(), canonical(settlement))))
        forgeries.append(
            (topics.issuer(machine, "settlement"), sign_text(world.keys.machine(machine), canonical(settlement)))
        )
        before = vendor.incidents + issuer.incidents
        for topic, payload in forgeries:
            on_broker(world, topic, payload)
        eventually(
            lambda: vendor.incidents + issuer.incidents >= before + len(forgeries), what="every forgery an incident"
        )
        assert vendor.store.execute("SELECT seq, payload FROM reports ORDER BY seq") == stored, "a forgery was stored"
        assert issuer.store.count() == 0 and issuer.store.execute("SELECT COUNT(*) FROM settlements")[0][0] == 0
        reasons = " | ".join(r for (r,) in vendor.store.execute("SELECT reason FROM incidents"))
        reasons += " | " + " | ".join(r for (r,) in issuer.store.execute("SELECT reason FROM incidents"))
        for expected in (
            "not a signed message",
            "does not know",
            "is not enrolled",
            f"a second, different report at stored seq {sale_seq}",
        ):
            assert expected in reasons
        assert vendor.store.acked(machine) == len(stored), "a forgery moved the ack"


def test_a_settlement_the_issuer_cannot_open_is_an_incident_and_the_issuer_keeps_storing(world, tmp_path):
    """Signed by the machine, but sealed to another issuer's key (nacl's CryptoError inside the writer)."""
    from nacl.public import PrivateKey

    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        issuer = world.issuer
        document = {"machine": machine, "day": "2026-03-01", "currency": "TWD", "cards": []}
        elsewhere = bytes(PrivateKey.generate().public_key)
        sealed = seal(world.keys.machine(machine).sign(canonical(document)), elsewhere)
        settlement = {"machine": machine, "seq": 1, "day": "2026-03-01", "sealed": sealed}
        before = issuer.incidents
        on_broker(
            world, topics.issuer(machine, "settlement"), sign_text(world.keys.machine(machine), canonical(settlement))
        )
        eventually(lambda: issuer.incidents > before, what="the unopenable settlement refused")
        assert issuer.store.count() == 0
        sell(runner, "A1", "amy")
        runner.machine.controller.close_day("2026-03-02")  # the genuine settlement, after it
        assert world.publisher.flush(30), "the issuer stopped storing after a settlement it could not open"
        assert issuer.store.count() >= 1 and issuer.store.execute("SELECT COUNT(*) FROM settlements")[0][0] >= 1


def test_a_counter_far_ahead_of_its_issue_time_is_refused_and_cannot_lock_the_vendor_out(world, tmp_path):
    """Issue 29: one command with counter 2^63-1 used to be accepted, and every later one refused for ever."""
    with attached_runner(world, tmp_path) as runner:
        price = {"slot": "A1", "price": 30}
        burned = world.commands.handle(
            "set_price", signed_command(world, runner, "set_price", {**price, "id": "b"}, counter=2**63 - 1)
        )
        assert burned is not None and burned["ok"] is False and "runs ahead of its issue time" in burned["reason"]
        now_us = int(runner.clock.now().timestamp() * 1_000_000)
        applied = world.commands.handle(
            "set_price", signed_command(world, runner, "set_price", {**price, "id": "n"}, counter=now_us)
        )
        assert applied is not None and applied["ok"] is True, applied
