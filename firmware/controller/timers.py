"""When the controller wakes up by itself: a session's timers, and reports held for a release window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from firmware.config.machine import MachineConfig
from firmware.controller.machine import SESSION, State
from firmware.controller.records import Hardware
from firmware.errors import StorageError
from firmware.ports import Books


class Timers:
    """Mixed into the controller; the serve loop, the scenario runner and the fleet call ``poll``."""

    state: State
    config: MachineConfig
    hw: Hardware
    books: Books
    session_started: datetime | None
    state_deadline: datetime | None
    storage_failed: Callable[[str], None]  # the controller's (faults.py): declared, not stubbed, so it is not shadowed

    def now(self) -> datetime:
        return self.hw.clock.now()

    @property
    def session_deadline(self) -> datetime | None:
        """When the session times out if nothing happens (state timer or overall session limit)."""
        if self.state not in SESSION or self.session_started is None:
            return None
        session_end = self.session_started + timedelta(seconds=self.config.timeouts.session)
        return min(d for d in (self.state_deadline, session_end) if d is not None)

    @property
    def next_deadline(self) -> datetime | None:
        """When to wake if nothing happens: the session's timer, or held reports falling due."""
        return min((d for d in (self.session_deadline, self.books.journal.next_release()) if d), default=None)

    def poll(self) -> None:
        """Release due reports, then fire a due session timeout."""
        try:
            self.books.journal.release_due(self.now())
        except StorageError as exc:
            self.storage_failed(str(exc))
        deadline = self.session_deadline
        if deadline is not None and self.now() >= deadline:
            self.dispatch("timeout")

    def dispatch(self, trigger: str, *args: Any) -> None:
        raise NotImplementedError
