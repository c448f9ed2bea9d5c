from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from firmware.app.main import event_loop
from firmware.app.runtime import Runtime
from firmware.controller.session import Controller
from simulator.scenarios.runner import ScenarioRunner


def outcome(controller: Controller) -> tuple[str | None, str | None]:
    """(outcome, reason) of the controller's last transaction, or (None, None) before the first."""
    last = controller.last_transaction
    return (last.outcome, last.reason) if last is not None else (None, None)


@contextmanager
def serve_loop(runner: ScenarioRunner, reader_url: str) -> Iterator[Runtime]:
    """The machine's runtime on the runner's controller, reading ``reader_url``, with its threads; stopped after."""
    runtime = event_loop(runner.machine, reader_url)
    runtime.start_threads()
    loop = threading.Thread(target=runtime.run, daemon=True)
    loop.start()
    try:
        yield runtime
    finally:
        runtime.stop()
        loop.join(timeout=5)
