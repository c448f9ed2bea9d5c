from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from firmware.app.runtime import Runtime
from firmware.readers.registry import open_reader
from simulator.scenarios.runner import ScenarioRunner


@contextmanager
def serve_loop(runner: ScenarioRunner, reader_url: str) -> Iterator[Runtime]:
    """The machine's runtime on the runner's controller, reading ``reader_url``, with its threads; stopped after."""
    runtime = Runtime(runner.machine.controller, runner.machine.books)
    runtime.reader = open_reader(reader_url, runner.clock, on_status=runtime.reader_status)
    runtime.start_threads()
    loop = threading.Thread(target=runtime.run, daemon=True)
    loop.start()
    try:
        yield runtime
    finally:
        runtime.stop()
        loop.join(timeout=5)
