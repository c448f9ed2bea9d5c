"""A vendor backend's dashboard on a free port, over a machine reporting through the world's broker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from simulator.dashboard.server import DashboardServer
from simulator.dashboard.wiring import dashboard_for
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner

TOKEN = "test-token-0123456789abcdef"
CHROMIUM_PATHS = ("chromium", "chromium-browser", "/usr/bin/chromium")


def chromium() -> str:
    """Debian's Chromium (make test installs it as root); skip, or fail under CI=true, without it."""
    for name in CHROMIUM_PATHS:
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed: apt-get install chromium (make test does this as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def dashboard_on(world: ReportingWorld, runner: ScenarioRunner) -> Iterator[DashboardServer]:
    """Commands are stamped with the machine's (virtual) clock, as an operator's clock agrees with the machine's."""
    assert world.vendor is not None
    app = dashboard_for(world.vendor, TOKEN, clock=runner.clock.now, interval_s=0.2)
    server = DashboardServer(app, "127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()
