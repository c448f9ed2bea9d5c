"""bench/fsync_wake.py: the pauses follow exactly a vend's two commits, and the vend's own time leaves them out."""

from __future__ import annotations

import time
from pathlib import Path

from bench.fsync_wake import own_code_rate, spin
from firmware import crashpoints


def test_each_vend_waits_after_its_two_commits_and_the_waits_are_not_counted_as_its_own(tmp_path: Path) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    vends, pause = 10, 0.02
    rate = own_code_rate(tmp_path, vends, pause, sleep)
    assert waits == [pause] * (2 * vends), "one pause after the debit's commit and one after the drop's"
    assert 1 / rate < 2 * pause, "a vend's own time still holds its pauses"
    assert crashpoints._hook is None, "the hook outlived the measurement"


def test_spinning_waits_on_the_cpu_for_as_long_as_asked() -> None:
    started = time.perf_counter()
    spin(0.01)
    assert time.perf_counter() - started >= 0.01
