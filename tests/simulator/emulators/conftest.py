from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from firmware.readers.registry import open_reader
from simulator.scenarios.runner import ScenarioRunner
from simulator.serve import ServeLoop


@contextmanager
def serve_loop(runner: ScenarioRunner, reader_url: str) -> Iterator[ServeLoop]:
    """The serve loop on the runner's controller, reading ``reader_url``, with its two threads; stopped after."""
    loops: list[ServeLoop] = []
    reader = open_reader(reader_url, runner.clock,
                         on_status=lambda online, detail: loops[0].reader_status(online, detail) if loops else None)
    loop = ServeLoop(runner.machine.controller, reader)
    loops.append(loop)
    threads = [threading.Thread(target=loop.read_forever, daemon=True), threading.Thread(target=loop.run, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield loop
    finally:
        loop.stopping.set()
        for thread in threads:
            thread.join(timeout=5)
        reader.close()


