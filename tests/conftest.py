"""Shared fixtures: paths to shipped configs, a fresh state dir, and leak checks."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest

from firmware import crashpoints

pytest_plugins = ["tests.support.reporting"]  # brokers, reporting worlds and captures for any directory

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# the `vending` of the interpreter running the tests (make test-pythons keeps one venv per Python)
VENDING = str(Path(sys.executable).parent / "vending")
SCENARIOS = sorted((CONFIGS / "scenarios").glob("*.yaml"))
DEMO_MACHINE = CONFIGS / "machines" / "demo.yaml"
T = TypeVar("T")


@pytest.fixture
def closing() -> Iterator[Callable[[T], T]]:
    """Hand back what it is given and stop it (``stop()``, else ``close()``) when the test ends, last first.

    One teardown for worlds, devices, readers and runners, instead of a try/finally in every test.
    """
    with ExitStack() as stack:

        def register(thing: T) -> T:
            target: Any = thing
            stack.callback(getattr(target, "stop", None) or target.close)
            return thing

        yield register


@pytest.fixture(autouse=True)
def _no_leaks():
    """Fail a test that leaves a crash hook armed or a non-daemon thread running."""
    before = {t.ident for t in threading.enumerate()}
    yield
    crashpoints.set_hook(None)
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"
