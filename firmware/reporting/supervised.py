"""A worker thread that is brought back when it dies, and counted, so a crash shows in the heartbeat.

Workers already catch what they can per message; this is the last line: a ``BaseException`` that
escaped (a bug, a ``RecursionError`` deep in a library) must not leave a machine that looks online
but never drains its outbox, or a backend that stores nothing while its process lives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class SupervisedThread:
    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self.name = name
        self.restarts = 0
        self._stopped = False
        self.thread = threading.Thread(target=target, name=name, daemon=True)

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
        self.thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self.thread.start()
        return True
