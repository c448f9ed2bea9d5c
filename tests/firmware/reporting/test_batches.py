"""Batches on the bytes: how waiting reports are grouped, and that a receiver trusts nothing in one unchecked."""

from __future__ import annotations

import json

import pytest

from firmware.config.machine import Reporting
from firmware.identity.signing import Identity, TrustStore
from firmware.journal.outbox import PendingReport
from firmware.reporting import batches
from firmware.reporting.batches import MAX_BATCH_BYTES, compose, digest_of, open_batch, plan
from firmware.reporting.signed import canonical
from firmware.reporting.wire import WireError

MACHINE = "TPE-DAAN-JH-01"
KEY = Identity.generate("machine")
OTHER = Identity.generate("machine")


def verify_by(identity: Identity):
    trust = TrustStore([identity.public])
    return lambda envelope: trust.verify(envelope)


def sale(seq: int, pad: int = 0) -> PendingReport:
    body = {"machine": MACHINE, "seq": seq, "kind": "sale", "price": 25, "note": "x" * pad, "product": "豆漿"}
    return PendingReport(seq, f"vending/v1/{MACHINE}/sale", json.dumps(body, sort_keys=True, ensure_ascii=False), False)


def test_one_waiting_report_is_a_group_of_one_and_travels_as_before():
    assert plan([sale(1)], 500, MAX_BATCH_BYTES) == [[sale(1)]]


def stock(seq: int) -> PendingReport:
    return PendingReport(seq, f"vending/v1/{MACHINE}/stock", f'{{"seq": {seq}}}', True)


def test_the_newest_retained_report_and_command_results_travel_alone_and_split_the_run_around_them():
    result = PendingReport(6, f"vending/v1/{MACHINE}/cmd-result", '{"seq": 6}', False)
    waiting = [sale(1), sale(2), stock(3), sale(4), sale(5), result, sale(7)]
    groups = plan(waiting, 500, MAX_BATCH_BYTES)
    assert [[r.seq for r in group] for group in groups] == [[1, 2], [3], [4, 5], [6], [7]]


def test_a_retained_report_a_newer_one_on_its_topic_replaces_rides_in_the_batch():
    """Only the newest snapshot of a topic could ever be read retained; the older ones are records like any."""
    status = PendingReport(5, f"vending/v1/{MACHINE}/status", '{"seq": 5}', True)  # another retained topic
    waiting = [sale(1), stock(2), sale(3), stock(4), status, sale(6), stock(7), sale(8)]
    groups = plan(waiting, 500, MAX_BATCH_BYTES)
    assert [[r.seq for r in group] for group in groups] == [[1, 2, 3, 4], [5], [6], [7], [8]]
    alone = [group[0] for group in groups if len(group) == 1 and group[0].retain]
    assert [(r.topic.rsplit("/", 1)[-1], r.seq) for r in alone] == [("status", 5), ("stock", 7)]


def test_groups_keep_seq_order_and_respect_the_report_count():
    groups = plan([sale(seq) for seq in range(1, 1201)], 500, MAX_BATCH_BYTES)
    assert all(1 < len(group) <= 500 for group in groups)
    assert [r.seq for group in groups for r in group] == list(range(1, 1201))
    small = plan([sale(seq) for seq in range(1, 12)], 5, MAX_BATCH_BYTES)
    assert [len(group) for group in small] == [5, 5, 1]


@pytest.mark.parametrize("limit", [4096, 10_000, MAX_BATCH_BYTES])
@pytest.mark.parametrize("pad", [0, 700, 1200])
def test_a_composed_batch_never_exceeds_the_byte_limit_and_uses_most_of_it(limit: int, pad: int):
    waiting = [sale(seq, pad) for seq in range(1, 400)]
    groups = plan(waiting, 1000, limit)
    sizes = [len(compose(KEY, MACHINE, "vendor", group).encode()) for group in groups if len(group) > 1]
    assert sizes and max(sizes) <= limit
    per_report = sizes[0] / len(groups[0])
    assert sizes[0] > limit - 2 * per_report - batches.ENVELOPE_BYTES, "the planner wastes most of the room"


@pytest.mark.parametrize("seq", [9, 10, 99_999, 10**12])
@pytest.mark.parametrize("pad", [0, 3, 700])
def test_the_planner_counts_exactly_the_bytes_a_report_adds_to_a_composed_batch(seq: int, pad: int):
    before = [sale(seq - 2), sale(seq - 1)]
    added = sale(seq, pad)
    grown = len(compose(KEY, MACHINE, "vendor", [*before, added]).encode())
    grown -= len(compose(KEY, MACHINE, "vendor", before).encode())
    assert batches._wire_bytes(added) == grown + 2  # the planner also counts the JWS string's two quotes, once


def test_the_manifest_is_signed_in_its_canonical_form():
    """It is encoded in C, but the signed bytes are exactly ``canonical()``'s: the wire did not change."""
    document = json.loads(compose(KEY, MACHINE, "vendor", [sale(seq) for seq in (7, 8, 10**12)]))
    signed = document["manifest"]["payload"]
    assert signed == canonical(json.loads(signed))


def test_compose_then_open_gives_back_every_report_with_the_digest_of_its_text():
    group = [sale(seq) for seq in (7, 8, 9)]
    raw = compose(KEY, MACHINE, "vendor", group).encode()
    signed, opened = open_batch(raw, MACHINE, "vendor", verify_by(KEY))
    assert [(r.seq, r.kind, r.digest) for r in opened] == [(r.seq, "sale", digest_of(r.payload)) for r in group]
    assert [r.payload for r in opened] == [json.loads(r.payload) for r in group]
    assert signed.signer.kid == KEY.kid
    manifest = json.loads(signed.payload)
    assert manifest["machine"] == MACHINE and [e["seq"] for e in manifest["reports"]] == [7, 8, 9]


def test_the_config_cannot_ask_for_batches_larger_than_a_receiver_takes():
    limit = Reporting.model_fields["batch_bytes"].metadata
    assert max(getattr(m, "le", 0) or 0 for m in limit) == MAX_BATCH_BYTES


def tampered(change) -> bytes:
    document = json.loads(compose(KEY, MACHINE, "vendor", [sale(1), sale(2)]))
    change(document)
    return json.dumps(document, ensure_ascii=False).encode()


def resign(document: dict, manifest: dict) -> None:
    document["manifest"] = KEY.sign(canonical(manifest))


def manifest_of(document: dict) -> dict:
    return json.loads(document["manifest"]["payload"])


HOSTILE = {
    "a report text changed after signing": (
        lambda d: d["reports"].__setitem__(0, d["reports"][0].replace("25", "1")),
        "does not match the digest",
    ),
    "a report dropped": (lambda d: d["reports"].pop(), "lists 2 reports, the batch carries 1"),
    "a report added": (lambda d: d["reports"].append(d["reports"][0]), "lists 2 reports, the batch carries 3"),
    "the manifest edited without re-signing": (
        lambda d: d["manifest"].__setitem__("payload", d["manifest"]["payload"].replace('"seq":2', '"seq":3')),
        "bad signature",
    ),
    "another key signed it": (
        lambda d: d.__setitem__("manifest", OTHER.sign(d["manifest"]["payload"])),
        "does not know",
    ),
    "for another machine": (
        lambda d: resign(d, {**manifest_of(d), "machine": "TPE-OTHER-01"}),
        "another machine",
    ),
    "for the issuer stream": (lambda d: resign(d, {**manifest_of(d), "stream": "issuer"}), "'issuer' stream"),
    "seqs not one after another": (
        lambda d: resign(
            d, {**manifest_of(d), "reports": [manifest_of(d)["reports"][0], {**manifest_of(d)["reports"][1], "seq": 5}]}
        ),
        "does not follow",
    ),
    "a command result smuggled in": (
        lambda d: resign(
            d,
            {**manifest_of(d), "reports": [{**e, "kind": "cmd-result"} for e in manifest_of(d)["reports"]]},
        ),
        "not a report that travels in a batch",
    ),
    "a digest that is not hex": (
        lambda d: resign(
            d, {**manifest_of(d), "reports": [{**e, "sha256": "Z" * 64} for e in manifest_of(d)["reports"]]}
        ),
        "64 lowercase hex",
    ),
    "an extra key": (lambda d: d.__setitem__("note", "hi"), "nothing else"),
    "reports not strings": (lambda d: d.__setitem__("reports", [{"seq": 1}, {"seq": 2}]), "list of report texts"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_batch_is_refused_with_a_reason(name: str):
    change, reason = HOSTILE[name]
    with pytest.raises(WireError, match=reason):
        open_batch(tampered(change), MACHINE, "vendor", verify_by(KEY))


def test_a_report_whose_seq_differs_from_its_manifest_entry_is_refused():
    lying = PendingReport(2, f"vending/v1/{MACHINE}/sale", sale(9).payload, False)  # text says seq 9
    raw = compose(KEY, MACHINE, "vendor", [sale(1), lying]).encode()
    with pytest.raises(WireError, match="another seq"):
        open_batch(raw, MACHINE, "vendor", verify_by(KEY))


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"x" * (MAX_BATCH_BYTES + 1), "larger than"),
        (b"[" * 5000, "nests deeper"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'{"manifest": [], "reports": []}', "must be a signed JWS object"),
    ],
)
def test_junk_is_refused_before_any_signature_work(raw: bytes, reason: str):
    with pytest.raises(WireError, match=reason):
        open_batch(raw, MACHINE, "vendor", verify_by(KEY))
