"""Several waiting reports in one MQTT message, signed once, so a backlog drains at the broker's speed.

One MQTT message per report costs a PUBLISH, a PUBACK, a signature and a receiver ack each; a
backlog (after an outage, a busy lunch's release window, a fleet) is then limited by how fast
Python clients handle packets, not by the broker or the disk. A batch carries a run of one stream's
reports in seq order as one message on ``<prefix>/<machine>/batch``::

    {"manifest": <JWS of {"machine", "stream", "reports": [{"seq", "kind", "sha256"}, ...]}>,
     "reports": ["<report text>", ...]}

The machine signs the manifest, not each report: one Ed25519 signature per batch. The manifest
lists each report's SHA-256, so a receiver can still check every report against the signature, and
an auditor can check one stored row later (its digest is in a stored manifest, the manifest is
signed) even after the other rows of the batch were erased. Report texts are exactly the outbox
payloads, so a report's digest is the same whether it travelled alone or in a batch, and a resend
in the other form is still recognised as a redelivery.

Reports somebody reads live on their own topic travel alone: a command result (the operator's CLI
waits for it) and the newest retained report of its topic (the stock snapshot a dashboard reads on
connect). An older retained report waiting behind a newer one on the same topic could never be read
retained (the broker keeps one message per topic, and the newer one follows in the same drain); the
vendor stores it as a record like any other, so it rides in a batch instead of splitting the run
(where a backlog holds a restock every few dozen sales, that was most of its messages, each signed,
verified and acked on its own: docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring
from typing import Any, NamedTuple

import msgspec

from firmware.identity.signing import Identity, SignatureError, Signed
from firmware.journal.outbox import PendingReport
from firmware.reporting.codec import CheckedPayload
from firmware.reporting.signed import Verifier, canonical
from firmware.reporting.wire import WireError, parse_as, sequence

BATCH_KIND = "batch"
MAX_BATCH_BYTES = 64 * 1024  # the whole message; what the machine's config may set as its batch size, at most
MAX_BATCH_REPORTS = 1000
# what a receiver takes in a batch; anything else travels alone (cmd-result: the operator's CLI reads it live)
BATCHABLE_KINDS = frozenset(
    {
        "sale",
        "denial",
        "stock",
        "alert",
        "summary",
        "settlement",
        "account",
        "unresolved",
        "guardian-alert",
        "credit",
        "credit-given",
    }
)
ENVELOPE_BYTES = 640  # outer keys, machine, stream, JWS header and signature: about 420 bytes, bounded here
_DIGEST_SIZE = "0" * 64  # a SHA-256 in hex takes as much room whatever it is: sizing needs no hashing
# one manifest entry as it appears inside the JWS payload string (its quotes escaped), less its kind and seq
_ENTRY_BYTES = len(json.dumps(canonical({"kind": "", "seq": 0, "sha256": _DIGEST_SIZE}))) - len("0")
_MANIFEST_ENCODER = msgspec.json.Encoder(order="sorted")  # canonical() for ints and strings, at C speed


class BatchedReport(NamedTuple):
    """One report out of a verified batch (a tuple: a backlog makes thousands a second)."""

    seq: int
    kind: str
    payload: dict[str, Any]
    digest: str  # SHA-256 of the report text, as the manifest lists it
    text: str  # the report text itself


def digest_of(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def kind_of(topic: str) -> str:
    return topic.rsplit("/", 1)[-1]


def travels_alone(report: PendingReport, newest_retained: dict[str, int]) -> bool:
    """Command results and the newest retained report of its topic keep their own topic (module docstring).

    ``newest_retained``: per retained topic, the seq of the newest report waiting on it; an older one
    rides in a batch. Anything the receivers do not take in a batch travels alone.
    """
    if kind_of(report.topic) not in BATCHABLE_KINDS:
        return True
    return report.retain and newest_retained[report.topic] == report.seq


def _entry(report: PendingReport) -> dict[str, Any]:
    return {"seq": report.seq, "kind": kind_of(report.topic), "sha256": digest_of(report.payload)}


def _wire_bytes(report: PendingReport) -> int:
    """What one report adds to a batch: its text as a JSON string, and its manifest entry inside the JWS.

    Exactly what ``compose`` will write (a test holds the two together), without writing it: the text
    through the same C string encoder ``json.dumps`` uses, the entry from its fixed shape, where only
    the kind and the seq's digits vary (the digest is always 64 hex digits).
    """
    text = encode_basestring(report.payload)
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return size + _ENTRY_BYTES + len(kind_of(report.topic)) + len(str(report.seq)) + 2  # two commas


def plan(reports: Sequence[PendingReport], max_reports: int, max_bytes: int) -> list[list[PendingReport]]:
    """Split one stream's waiting reports (in seq order) into the messages that carry them.

    Runs of batchable reports up to ``max_reports`` and ``max_bytes`` on the wire; each report that
    travels alone on its own. A group of one is sent as an ordinary report: a single waiting
    report goes out exactly as before.
    """
    groups: list[list[PendingReport]] = []
    run: list[PendingReport] = []
    size = ENVELOPE_BYTES
    newest_retained = {report.topic: report.seq for report in reports if report.retain}  # seq order: last wins
    for report in reports:
        if travels_alone(report, newest_retained):
            groups += [run, [report]] if run else [[report]]
            run, size = [], ENVELOPE_BYTES
            continue
        added = _wire_bytes(report)
        if run and (len(run) >= max_reports or size + added > max_bytes):
            groups.append(run)
            run, size = [], ENVELOPE_BYTES
        run.append(report)
        size += added
    if run:
        groups.append(run)
    return groups


def compose(identity: Identity, machine: str, stream: str, reports: Iterable[PendingReport]) -> str:
    """The wire form of a batch: the reports' texts and the manifest that lists them, signed once."""
    reports = list(reports)
    manifest = {"machine": machine, "stream": stream, "reports": [_entry(report) for report in reports]}
    text = _MANIFEST_ENCODER.encode(manifest).decode("utf-8")  # == canonical(manifest): ints and strings only
    document = {"manifest": identity.sign(text), "reports": [report.payload for report in reports]}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def open_batch(
    raw: bytes, machine: str, stream: str, verify: Verifier, max_bytes: int = MAX_BATCH_BYTES
) -> tuple[Signed, list[BatchedReport]]:
    """A verified batch from ``machine`` on ``stream``, or ``WireError`` saying what is wrong with it.

    Checked in order, nothing trusted before its check: size and shape of the message, the signature
    on the manifest, the manifest's shape (this machine, this stream, seqs one after another), then
    each report text against its listed digest, and its own seq against the manifest's.
    """
    outer = parse_as(BATCH_KIND, raw[: max_bytes + 1], max_bytes)
    if set(outer) != {"manifest", "reports"}:
        raise WireError(f'a batch is {{"manifest", "reports"}} and nothing else, got keys {sorted(outer)[:5]}')
    texts, envelope = outer["reports"], outer["manifest"]
    if not isinstance(envelope, dict):
        raise WireError("batch manifest must be a signed JWS object")
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise WireError("batch reports must be a list of report texts")
    try:
        signed = verify(envelope)
    except SignatureError as exc:
        raise WireError(f"batch manifest: {exc}") from None
    entries = _manifest_entries(parse_as("batch-manifest", signed.payload, max_bytes), machine, stream)
    if len(entries) != len(texts):
        raise WireError(f"the manifest lists {len(entries)} reports, the batch carries {len(texts)}")
    pairs = enumerate(zip(texts, entries, strict=True))
    return signed, [_report(number, text, entry, max_bytes) for number, (text, entry) in pairs]


def _manifest_entries(manifest: dict[str, Any], machine: str, stream: str) -> list[tuple[int, str, str]]:
    if set(manifest) != {"machine", "stream", "reports"}:
        raise WireError(f'a manifest is {{"machine", "stream", "reports"}}, got keys {sorted(manifest)[:5]}')
    if manifest["machine"] != machine:
        raise WireError("the batch manifest is for another machine")
    if manifest["stream"] != stream:
        raise WireError(f"the batch manifest is for the {str(manifest['stream'])[:20]!r} stream, not {stream!r}")
    listed = manifest["reports"]
    if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_BATCH_REPORTS:
        raise WireError(f"a manifest lists 1 to {MAX_BATCH_REPORTS} reports")
    if isinstance(manifest, CheckedPayload):  # its schema held each entry's keys, seq range, kind and digest
        entries = [(entry["seq"], entry["kind"], entry["sha256"]) for entry in listed]
    else:
        entries = [_entry_checked(number, entry) for number, entry in enumerate(listed)]
    gap = next((n for n in range(1, len(entries)) if entries[n][0] != entries[n - 1][0] + 1), None)
    if gap is not None:
        raise WireError(f"manifest report {gap}: seq {entries[gap][0]} does not follow {entries[gap - 1][0]}")
    return entries


def _entry_checked(number: int, entry: Any) -> tuple[int, str, str]:
    """One manifest entry the typed decoder could not vouch for, checked field by field."""
    if not isinstance(entry, dict) or set(entry) != {"seq", "kind", "sha256"}:
        raise WireError(f'manifest report {number} must be {{"seq", "kind", "sha256"}}')
    seq = sequence(entry["seq"], minimum=1)
    kind, digest = entry["kind"], entry["sha256"]
    if kind not in BATCHABLE_KINDS:
        raise WireError(f"manifest report {number}: {str(kind)[:20]!r} is not a report that travels in a batch")
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise WireError(f"manifest report {number}: sha256 must be 64 lowercase hex digits")
    return seq, kind, digest


def _report(number: int, text: str, entry: tuple[int, str, str], max_bytes: int) -> BatchedReport:
    seq, kind, digest = entry
    data = text.encode("utf-8")  # hashed and decoded as the same bytes
    if digest_of(data) != digest:
        raise WireError(f"batch report {number} does not match the digest its manifest signed")
    payload = parse_as(kind, data, max_bytes)
    if payload.get("seq") != seq:
        raise WireError(f"batch report {number} carries another seq than its manifest lists ({seq})")
    return BatchedReport(seq, kind, payload, digest, text)
