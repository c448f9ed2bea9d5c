"""bench/drain_floor.py: the floor carries every batched report through real checks, and its verdict is arithmetic."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from bench.common import demo_id
from bench.drain_floor import STEPS, Stopwatch, backend_floor, copy_outbox, floor_round, publisher_floor
from bench.outbox_throughput import fill_outbox
from simulator.dev_keys import DevKeys


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("floor")
    state, _ = fill_outbox(directory, 200)  # a restock every 90 sales: the newest stock snapshot travels alone
    return state, directory / "keys"


def test_a_round_stores_every_batched_report_and_times_every_step(outbox: tuple[Path, Path], tmp_path: Path) -> None:
    state, keys = outbox
    with sqlite3.connect(state / "machine.db") as db:
        reports, retained_topics = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT CASE WHEN retain THEN topic END) FROM outbox WHERE stream = 'vendor'"
        ).fetchone()
    batched = reports - retained_topics  # all but the newest retained report of each topic
    spent, stored = floor_round(state, keys, tmp_path / "round")
    assert stored == batched > 150, "every report that travels in a batch was decoded, checked and inserted once"
    assert {side: set(steps) for side, steps in spent.items()} == {side: set(STEPS[side]) for side in STEPS}
    with sqlite3.connect(tmp_path / "round" / "machine.db") as copy:
        left = copy.execute("SELECT COUNT(*), COALESCE(SUM(retain = 0), 0) FROM outbox WHERE stream = 'vendor'")
        assert left.fetchone()[1] == 0, "the publisher's delete ran on what the batches carried"


def test_the_backend_floor_verifies_the_signature_it_times(outbox: tuple[Path, Path], tmp_path: Path) -> None:
    state, keys = outbox
    copy = copy_outbox(state, tmp_path)
    identity = DevKeys(keys).machine(demo_id())
    sent = publisher_floor(copy, identity, demo_id(), Stopwatch())
    forged = json.loads(sent[0])
    forged["manifest"]["signature"] = DevKeys(keys).vendor.sign(forged["manifest"]["payload"])["signature"]
    with pytest.raises(InvalidSignature):
        backend_floor([json.dumps(forged).encode(), *sent[1:]], identity.key.public_key, tmp_path, Stopwatch())


def _figure(median: float, low: float | None = None) -> dict[str, object]:
    return {"median": median, "min": median if low is None else low, "max": median, "rounds": [median] * 5}


@pytest.mark.parametrize(
    ("backend", "backend_best", "said"),
    [
        (16.0, 16.0, "even the most favourable rounds exceed it: no implementation of this contract reaches 1.0"),
        (
            16.0,
            10.0,
            "rounds (16.0 µs) leave 4.0 µs for all the floor leaves out, where the drain's own rounds spend 18 µs",
        ),
        (8.0, 8.0, "within reach in principle: the rest of the drain's CPU (26 µs) is per-report Python"),
    ],
)
def test_the_floor_s_verdict_follows_its_figures(backend: float, backend_best: float, said: str) -> None:
    from bench.report import floor_paragraph

    outbox = {
        "limit": _figure(100_000.0),  # 10 µs a message: 20 µs on two cores
        "machine": {"cores": 2},
        "broker_cpu_us_per_report": _figure(1.0),
        "total_cpu_us_per_report": _figure(40.0),
    }
    steps = {"publisher": ["read"], "backend": ["insert"]}
    floor = {
        "steps": steps,
        "publisher": {"read": _figure(5.0)},
        "backend": {"insert": _figure(backend)},
        "publisher_us_per_report": _figure(5.0),
        "backend_us_per_report": _figure(backend, backend_best),
    }
    text = " ".join(floor_paragraph(outbox, floor).split())
    assert said in text
    assert f"the whole floor is {6 + backend:.1f} µs, {(6 + backend) / 20:.0%} of the 20.0 µs" in text
    assert ("in every round more than the 10.0 µs" in text) == (backend_best > 10)
