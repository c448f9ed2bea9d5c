"""Shared fixtures: paths to shipped configs, a fresh state dir, and leak checks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from firmware import crashpoints

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SCENARIOS = sorted((CONFIGS / "scenarios").glob("*.yaml"))
DEMO_MACHINE = CONFIGS / "machines" / "demo.yaml"


@pytest.fixture(autouse=True)
def _no_leaks():
    """Fail a test that leaves a crash hook armed or a non-daemon thread running."""
    before = {t.ident for t in threading.enumerate()}
    yield
    crashpoints.set_hook(None)
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"
