"""A worker thread that is brought back when it dies, and counted, so a crash shows in the heartbeat.

Workers already catch what they can per message; this is the last line: a ``BaseException`` that
escaped (a bug, a ``RecursionError`` deep in a library) must not leave a machine that looks online
but never drains its outbox, or a backend that stores nothing while its process lives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from firmware.threads import daemon, named

log = logging.getLogger(__name__)


class SupervisedThread:
    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self.name = named(name)
        self.restarts = 0
        self._stopped = False
        self.thread = daemon(target, self.name)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """From here on a dead thread is expected (the owner is shutting down), not restarted."""
        self._stopped = True

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self.thread.ident is not None:
            self.thread.join(timeout)

    def ensure_alive(self) -> bool:
        """Restart the worker if it died; True if it had to."""
        if self._stopped or self.thread.ident is None or self.thread.is_alive():
            return False
        self.restarts += 1
        log.error("worker thread %s died; restarted it (restart %d)", self.name, self.restarts)
        self.thread = daemon(self._target, self.name)
        self.thread.start()
        return True
