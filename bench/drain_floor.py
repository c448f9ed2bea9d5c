"""The drain's floor: only the C calls a report cannot do without between the outbox and the backend's store.

``bench/outbox_throughput.py`` measures the drain and each process's CPU per report. This measures,
on the same outbox, what no implementation of the same contract can skip, each step timed alone
(this process's CPU, user + system, over every report), its inputs prepared beforehand:

publisher: the waiting rows read (one SELECT); per batch, as the machine plans them: each text's
SHA-256, the manifest and the message encoded (msgspec), one Ed25519 signature; the acked rows
deleted (the publisher's own delete, 2,000 at a time).
backend: the message, its manifest and each report decoded and held to the contract (the typed
decoders of ``firmware/reporting/codec.py``), each text's SHA-256 against the manifest, one Ed25519
verification per batch; the rows inserted (the vendor's schema and settings, 2,000 per durable
commit, as its writer coalesces).

Left out, so any real drain costs more: the MQTT clients' packets, Mosquitto (the drain measures
it), the acks, and all Python per report but the loop that makes each call. Compared with the CPU the limit's rate
leaves (docs/benchmarks.md), it says whether the target is out of reach for this contract on this
box, or within reach and missed by per-report Python.
Run: .venv/bin/python bench/drain_floor.py [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec  # noqa: E402
from joserfc.util import urlsafe_b64decode  # noqa: E402

from bench.common import ROUNDS, demo_id, merge_results, spread  # noqa: E402
from bench.outbox_throughput import fill_outbox  # noqa: E402
from firmware.config.machine import Reporting  # noqa: E402
from firmware.journal.outbox import Outbox  # noqa: E402
from firmware.reporting import batches, codec  # noqa: E402
from simulator.backends.service import BATCH as WRITER_BATCH  # noqa: E402
from simulator.backends.store import INSERT_REPORT, SqliteReportStore  # noqa: E402
from simulator.dev_keys import DevKeys  # noqa: E402

STEPS = {
    "publisher": ("read", "digest", "encode", "sign", "delete"),
    "backend": ("decode", "digest", "verify", "insert"),
}

Round = tuple[dict[str, dict[str, float]], int]  # CPU seconds per step of each side, and the reports carried


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """CPU seconds per named step, summed over however many times each runs."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = cpu_s()
        yield
        self.spent[name] = self.spent.get(name, 0.0) + cpu_s() - started


def publisher_floor(db: Path, identity: Any, machine: str, watch: Stopwatch) -> list[bytes]:
    """The publisher's C work on a copy of the outbox; the batches it sends, as the backend gets them."""
    outbox = Outbox.open(db)
    waiting = outbox.after("vendor", 0, 10**9)
    limits = Reporting()
    groups = [group for group in batches.plan(waiting, limits.batch_reports, limits.batch_bytes) if len(group) > 1]
    sent = [batches.compose(identity, machine, "vendor", group).encode() for group in groups]  # the real bytes
    key, encode = identity.key.private_key, msgspec.json.Encoder(order="sorted").encode
    with watch.step("read"):
        outbox.conn.execute("SELECT seq, topic, payload, retain FROM outbox WHERE stream = 'vendor'").fetchall()
    texts = [[report.payload.encode() for report in group] for group in groups]
    with watch.step("digest"):
        digests = [[hashlib.sha256(text).hexdigest() for text in group] for group in texts]
    entries = [
        [{"seq": r.seq, "kind": batches.kind_of(r.topic), "sha256": d} for r, d in zip(group, listed, strict=True)]
        for group, listed in zip(groups, digests, strict=True)
    ]
    manifests = [{"machine": machine, "stream": "vendor", "reports": listed} for listed in entries]
    with watch.step("encode"):
        encoded = [encode(manifest) for manifest in manifests]
    with watch.step("sign"):
        signatures = [key.sign(text) for text in encoded]
    documents = [
        {"manifest": {"signature": s}, "reports": [r.payload for r in g]}
        for s, g in zip(signatures, groups, strict=True)
    ]
    with watch.step("encode"):
        for document in documents:
            encode(document)
    acks, unacked = [], 0  # the backend acks once per stored chunk of about WRITER_BATCH reports
    for group in groups:
        unacked += len(group)
        if unacked >= WRITER_BATCH or group is groups[-1]:
            acks.append(group[-1].seq)
            unacked = 0
    with watch.step("delete"):
        for seq in acks:
            outbox.delete_acked({"vendor": seq})
    outbox.conn.close()
    return sent


def backend_floor(sent: list[bytes], public: Any, directory: Path, watch: Stopwatch) -> int:
    """The backend's C work on the batches sent; the reports it stored."""
    decode_batch, decode_manifest = codec.decoder("batch"), codec.decoder("batch-manifest")
    assert decode_batch is not None and decode_manifest is not None, "the envelopes are typed (codec.prepare)"
    with watch.step("decode"):
        outers = [decode_batch.decode(raw) for raw in sent]
    texts = [[text.encode() for text in outer.reports] for outer in outers]
    with watch.step("decode"):
        listed = [decode_manifest.decode(outer.manifest.payload) for outer in outers]
        for manifest, group in zip(listed, texts, strict=True):
            for entry, text in zip(manifest.reports, group, strict=True):
                typed = codec.decoder(entry.kind)
                assert typed is not None
                typed.decode(text)
    with watch.step("digest"):
        digests = [[hashlib.sha256(text).hexdigest() for text in group] for group in texts]
    signing_inputs = [f"{outer.manifest.protected}.{outer.manifest.payload}".encode() for outer in outers]
    signatures = [urlsafe_b64decode(outer.manifest.signature.encode()) for outer in outers]  # as joserfc reads them
    with watch.step("verify"):
        for signature, signed in zip(signatures, signing_inputs, strict=True):
            public.verify(signature, signed)
    machine = listed[0].machine
    detached = [f"{outer.manifest.protected}..{outer.manifest.signature}" for outer in outers]  # as stored per row
    rows = [
        (machine, entry.seq, entry.kind, text.decode(), digest, signature)
        for signature, manifest, group, hashed in zip(detached, listed, texts, digests, strict=True)
        for entry, text, digest in zip(manifest.reports, group, hashed, strict=True)
    ]
    store = SqliteReportStore(directory / "vendor.db")  # the vendor's settings, then raw SQL only
    conn = store.conn
    with watch.step("insert"):
        for start in range(0, len(rows), WRITER_BATCH):
            chunk = rows[start : start + WRITER_BATCH]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_REPORT, chunk)
            conn.executemany("INSERT OR IGNORE INTO manifests (signature, manifest) VALUES (?, ?)",
                             {(row[5], "") for row in chunk})  # fmt: skip
            conn.execute("INSERT OR REPLACE INTO acked (machine, seq) VALUES (?, ?)", (machine, chunk[-1][1]))
            conn.execute("COMMIT")
    stored = int(conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0])
    store.close()
    return stored


def copy_outbox(state: Path, workdir: Path) -> Path:
    """A fresh copy of the machine's database in ``workdir``, its outbox as filled (each round spends one)."""
    copy = workdir / "machine.db"
    with closing(sqlite3.connect(state / "machine.db")) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)  # closed here: ``with`` on a connection only commits
    return copy


def floor_round(state: Path, keys_dir: Path, workdir: Path) -> Round:
    """One round on a fresh copy of the outbox: CPU seconds per step of each side, and the reports carried."""
    workdir.mkdir(parents=True)
    copy = copy_outbox(state, workdir)
    identity = DevKeys(keys_dir).machine(demo_id())
    publisher, backend = Stopwatch(), Stopwatch()
    sent = publisher_floor(copy, identity, demo_id(), publisher)
    stored = backend_floor(sent, identity.key.public_key, workdir, backend)
    return {"publisher": publisher.spent, "backend": backend.spent}, stored


def per_report(rounds: list[Round], side: str, pick: Callable[[dict[str, float]], float]) -> dict[str, Any]:
    return spread([pick(spent[side]) * 1e6 / carried for spent, carried in rounds], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    codec.decoder("batch")  # the typed decoders are made once, before any clock runs (as a backend's start)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        directory = Path(tmp)
        state, _ = fill_outbox(directory, args.messages)
        rounds = [floor_round(state, directory / "keys", directory / f"round-{n}") for n in range(args.rounds)]
    figures: dict[str, Any] = {"messages": args.messages, "reports_carried": rounds[0][1], "steps": STEPS}
    for side, steps in STEPS.items():
        figures[side] = {step: per_report(rounds, side, itemgetter(step)) for step in steps}
        figures[f"{side}_us_per_report"] = per_report(rounds, side, lambda spent: sum(spent.values()))
    merge_results("drain_floor", figures)
    for side in STEPS:
        parts = ", ".join(f"{step} {figure['median']:.2f}" for step, figure in figures[side].items())
        print(f"{side:9} floor {figures[f'{side}_us_per_report']['median']:5.2f} µs of CPU per report ({parts})")


if __name__ == "__main__":
    main()
