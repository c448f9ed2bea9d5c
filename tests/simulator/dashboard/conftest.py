"""A vendor backend's dashboard on a free port, over a machine reporting through the world's broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from simulator.dashboard.server import DashboardServer
from simulator.dashboard.wiring import dashboard_for
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioRunner
from tests.support.packages import require_program

TOKEN = "test-token-0123456789abcdef"


def chromium() -> str:
    """Debian's Chromium (make test installs it as root)."""
    return require_program("chromium", "chromium")


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
