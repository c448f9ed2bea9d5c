"""Running the ``vending`` CLI from a test: a hang guard, not a speed limit, and what it said when it hung."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.conftest import VENDING

HANG_GUARD_S = 900.0  # only a hang gets here: a loaded 2-core CI box took 206 s for the cluster day, 64 s idle
GOODBYE_S = 60.0  # after SIGINT, for the command's own clean-up (servers it started in sessions of their own)
# for a test that runs one: pytest-timeout's per-test limit (pyproject) would otherwise end it before the guard
LONG_RUN = pytest.mark.timeout(HANG_GUARD_S + GOODBYE_S + 60)


def run_vending(args: list[str], hang_guard_s: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    """``vending *args`` to completion; past the guard, interrupted (so it stops what it started) and failed.

    The failure carries the end of the command's error output: where it stood when it stopped moving.
    Speed is measured in ``bench/``, never here.
    """
    with subprocess.Popen(
        [VENDING, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(timeout=hang_guard_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # KeyboardInterrupt: its finally blocks stop brokers and nodes
            try:
                out, err = process.communicate(timeout=GOODBYE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            raise AssertionError(
                f"vending {' '.join(args[:2])} still ran after {hang_guard_s:.0f}s; its last words:\n{err[-3000:]}"
            ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
