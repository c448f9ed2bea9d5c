"""Batched reporting on both brokers: a backlog travels as a few signed batches and still arrives exactly once."""

from __future__ import annotations

import hashlib
import json

from firmware.reporting import topics
from simulator.scenarios.reporting_world import ReportingWorld
from tests.support.reporting import attached_runner, broker_client, sell, sell_many
from tests.support.waiting import eventually

BACKLOG = 40


def vendor_of(world: ReportingWorld):
    assert world.vendor is not None, "the vendor backend is down"
    return world.vendor


def test_a_backlog_after_an_outage_travels_in_batches_and_arrives_exactly_once(world, capture, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        sell(runner, "A1", "amy")
        assert world.publisher.flush(20)
        alone = [t for t, _, _ in capture.messages if t == topics.vendor(machine, "sale")]
        assert len(alone) == 1, "a single waiting report goes out at once, on its own topic"
        world.publisher.set_link(False)  # the machine's network only: the capture keeps listening
        sell_many(runner, BACKLOG)
        waiting = world.publisher.depth()
        assert waiting >= BACKLOG
        sent_before = world.publisher.published
        acks_before = len([t for t, _, _ in capture.messages if t == topics.ack("vendor", machine)])
        world.publisher.set_link(True)
        assert world.publisher.flush(30), f"outbox still holds {world.publisher.depth()}"

        store = vendor_of(world).store
        batches = [raw for t, raw, _ in capture.messages if t == topics.batch("vendor", machine)]
        assert batches, "the backlog did not travel as a batch"
        assert world.publisher.published - sent_before < waiting / 4, "the backlog went out one message per report"
        acks = len([t for t, _, _ in capture.messages if t == topics.ack("vendor", machine)]) - acks_before
        assert 1 <= acks <= world.publisher.published - sent_before, "more acks than messages: acked per report"
        seqs = [seq for (seq,) in store.execute("SELECT seq FROM reports WHERE machine = ? ORDER BY seq", (machine,))]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == world.publisher.reports_sent
        sold = runner.machine.db.conn.execute("SELECT COUNT(*) FROM vends WHERE status = 'completed'").fetchone()[0]
        assert store.count("sale") == sold > 10 and vendor_of(world).incidents == 0

        duplicates = store.duplicates
        for raw in batches:  # the whole backlog redelivered, as batches
            vendor_of(world).receive(topics.batch("vendor", machine), raw)
        for batch in map(json.loads, batches):  # and each batch's first report resent alone
            kind = json.loads(batch["manifest"]["payload"])["reports"][0]["kind"]
            vendor_of(world).receive(topics.vendor(machine, kind), resigned(world, machine, batch["reports"][0]))
        assert store.count("sale") == sold, "a redelivered batch stored twice"
        assert store.duplicates > duplicates and vendor_of(world).incidents == 0, "a resend in the other form"


def resigned(world: ReportingWorld, machine: str, text: str) -> bytes:
    """The same report text, signed alone by its machine (what a resend after a batch split looks like)."""
    from firmware.reporting.signed import sign_text

    return sign_text(world.keys.machine(machine), text).encode()


def test_every_row_stored_from_a_batch_is_verifiable_on_its_own(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        world.publisher.set_link(False)
        sell_many(runner, 12)
        world.publisher.set_link(True)
        assert world.publisher.flush(30)
        store = vendor_of(world).store
        rows = store.execute(
            "SELECT r.payload, r.digest, r.signature, m.manifest FROM reports r JOIN manifests m USING (signature)"
            " WHERE r.machine = ?",
            (machine,),
        )
        assert len(rows) >= 12
        for payload, digest, signature, manifest in rows:
            assert hashlib.sha256(payload.encode()).hexdigest() == digest, "the stored text is not what was signed"
            assert digest in [entry["sha256"] for entry in json.loads(manifest)["reports"]]
            protected, _, sig = signature.partition("..")
            envelope = {"protected": protected, "payload": manifest, "signature": sig}
            assert world.keys.enrolment.verify(machine, envelope).payload == manifest.encode()


def test_a_forged_batch_is_an_incident_and_stores_nothing(world, tmp_path):
    from firmware.identity.signing import Identity
    from firmware.journal.outbox import PendingReport
    from firmware.reporting.batches import compose

    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        stranger = Identity.generate("machine")
        genuine = vendor_of(world).store.count()  # what the machine sent before: its stock snapshot at boot
        fake = [
            PendingReport(seq, topics.vendor(machine, "sale"), json.dumps({"machine": machine, "seq": seq}), False)
            for seq in (1, 2)
        ]
        vendor_of(world).receive(topics.batch("vendor", machine), compose(stranger, machine, "vendor", fake).encode())
        assert vendor_of(world).incidents == 1 and vendor_of(world).store.count() == genuine
        reasons = vendor_of(world).store.execute("SELECT reason FROM incidents")
        assert "batch manifest" in reasons[0][0]


def test_the_machine_config_s_batch_limits_are_what_goes_on_the_wire(world, capture, tmp_path):
    from dataclasses import replace

    from firmware.config.machine import Reporting
    from simulator.scenarios import load_scenario
    from simulator.scenarios.runner import ScenarioRunner
    from tests.conftest import CONFIGS

    scenario = load_scenario(CONFIGS / "scenarios" / "normal-morning.yaml")
    config = scenario.machine.config.model_copy(update={"reporting": Reporting(batch_reports=3)})
    scenario = replace(scenario, machine=replace(scenario.machine, config=config))
    runner = ScenarioRunner(scenario, tmp_path / "machine", link=world.machine_link(scenario.machine.config.id))
    detach = world(runner)
    runner.start()
    try:
        assert world.publisher.wait_connected(15)
        machine = config.id
        world.publisher.set_link(False)
        sell_many(runner, 12)
        world.publisher.set_link(True)
        assert world.publisher.flush(30)
        sizes = [
            len(json.loads(raw)["reports"]) for t, raw, _ in capture.messages if t == topics.batch("vendor", machine)
        ]
        assert sizes and max(sizes) == 3, f"batches of {sizes}: the config's batch_reports: 3 was not applied"
    finally:
        detach()
        runner.close()


def test_a_backlog_s_older_stock_snapshots_ride_in_batches_and_the_newest_is_the_one_left_retained(
    world, capture, tmp_path
):
    with attached_runner(world, tmp_path) as runner:
        machine = runner.machine.controller.config.id
        stock_topic = topics.vendor(machine, "stock")
        assert world.publisher.flush(20)  # the snapshot at boot
        world.publisher.set_link(False)
        for level in (3, 4, 5):  # three restocks during the outage, sales after each: a batch starts with one
            runner.machine.controller.restock({"A1": level})
            sell_many(runner, 4)
        waiting = runner.machine.db.conn.execute(
            "SELECT seq FROM outbox WHERE topic = ? ORDER BY seq", (stock_topic,)
        ).fetchall()
        older, newest = [seq for (seq,) in waiting[:-1]], waiting[-1][0]
        assert len(older) >= 2, "each restock (and a sale down to the low-stock level) takes a snapshot"
        mark = len(capture.messages)
        world.publisher.set_link(True)
        assert world.publisher.flush(30), f"outbox still holds {world.publisher.depth()}"

        def stock_seqs(messages: list) -> list[int]:
            return [json.loads(json.loads(raw)["payload"])["seq"] for t, raw, _ in messages if t == stock_topic]

        drained = capture.messages[mark:]
        before = set(stock_seqs(capture.messages[:mark]))  # at least once on the wire: a cut link may resend them
        alone = [seq for seq in stock_seqs(drained) if seq not in before]
        assert alone == [newest], "only the newest snapshot goes alone on the retained topic"
        batched = [
            entry["seq"]
            for t, raw, _ in drained
            if t == topics.batch("vendor", machine)
            for entry in json.loads(json.loads(raw)["manifest"]["payload"])["reports"]
            if entry["kind"] == "stock"
        ]
        assert batched == older, "the older snapshots ride in the batches, in order"
        stored = vendor_of(world).store.execute(
            "SELECT seq FROM reports WHERE machine = ? AND kind = 'stock' ORDER BY seq", (machine,)
        )
        assert [seq for (seq,) in stored][-len(waiting) :] == [*older, newest]
        assert vendor_of(world).store.duplicates == 0

        retained: list[tuple[str, bytes]] = []
        late = broker_client(world, "late-dashboard")  # connects after the drain: gets what the broker retained
        late.on_message = lambda c, u, m: retained.append((m.topic, bytes(m.payload))) if m.retain else None
        try:
            late.subscribe([(stock_topic, 1), (topics.batch("vendor", machine), 1)])  # retained ones come at once
            eventually(lambda: any(topic == stock_topic for topic, _ in retained), what="the retained snapshot")
        finally:
            late.disconnect()
            late.loop_stop()
        assert topics.batch("vendor", machine) not in dict(retained), "a batch was left retained (a guard refuses it)"
        assert json.loads(json.loads(dict(retained)[stock_topic])["payload"])["seq"] == newest
