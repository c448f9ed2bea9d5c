"""What stops sales outside a sale, and what reopens them: storage failures and standing faults.

Mixed into the controller (``session.py``). A storage failure is caught at the controller's one
entry point and cleared only by a real durable write with room to spare; a standing fault (the reader
offline, the clock behind the books) is set and cleared by the condition itself, never by a door cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from firmware.controller.machine import SELLING, SESSION, State
from firmware.controller.records import Hardware
from firmware.domain import JournalEntry
from firmware.errors import StorageError
from firmware.messages import Message
from firmware.ports import Books

log = logging.getLogger(__name__)

HEADROOM_BYTES = 256 * 1024


class Faults:
    state: State
    hw: Hardware
    books: Books
    machine: Any  # the compiled state machine (``set_state``)
    fault_detail: str
    storage_error: str | None
    # the controller's own (session.py, service.py): declared, not stubbed, so no stub shadows them
    dispatch: Callable[..., None]
    clear_session: Callable[..., None]
    show: Callable[[Message], None]
    emit: Callable[..., None]
    entry: Callable[..., JournalEntry]
    journal_only: Callable[..., None]
    _cancel: Callable[[str, Message], None]

    def storage_failed(self, detail: str) -> None:
        """Disk full or read-only: no journal means no sales. Skips callbacks: nothing can be written.

        With the door open the machine stays in service (no sales either way): closing the door finds
        the failure (``fault_persists``), as it finds a standing fault, so the door is never lost track of.
        """
        log.error("storage failure, sales stopped: %s", detail)
        self.storage_error = detail
        if self.state is not State.SERVICE:
            self.machine.set_state(State.OUT_OF_ORDER)
        self.clear_session()
        self.hw.display.show(Message("out_of_order", {"detail": "storage"}))
        self.emit("storage_failed", detail=detail)

    def recheck_storage(self, headroom_bytes: int = HEADROOM_BYTES) -> bool:
        """After the operator freed space or remounted: a real durable write, with room to spare, decides.

        The probe writes ``headroom_bytes`` and removes them in one transaction: a disk with little slack stays shut.
        """
        try:
            self.books.journal.prove_headroom(headroom_bytes, self.entry("storage_restored", None))
        except StorageError as exc:
            self.storage_error = str(exc)
            return False
        self.storage_error = None
        self.emit("storage_restored")
        return True

    def standing_fault(self, detail: str, present: bool) -> None:
        """A condition outside any session -- the reader offline, the clock behind the books -- set or cleared.

        Present, it stops sales (a session is cancelled); with the door open it is only noted, and closing
        the door finds it (``fault_persists``). A vend under way finishes first: the caller asks again
        between events. Only the condition that set a fault clears it, never a door cycle.
        """
        if present:
            if self.state is State.SERVICE:
                self.fault_detail = self.fault_detail or detail
            elif self.state in SELLING:
                self.dispatch("fault", detail)
        elif self.fault_detail == detail:
            if self.state is State.OUT_OF_ORDER:
                self.dispatch("recover")
            elif self.state is State.SERVICE:
                self.fault_detail = ""

    # ---- guards and callbacks of the declaration (machine.py) ------------------------------------
    def storage_ok(self, *_: object) -> bool:
        return self.storage_error is None

    def fault_persists(self, *_: object) -> bool:
        """A storage failure or a fault (motor, reader, clock) is still set: only ``recover`` may clear it."""
        return self.storage_error is not None or bool(self.fault_detail)

    def close_for_fault(self, detail: str = "fault", *_: object) -> None:
        self.fault_detail = detail
        if self.state in SESSION:
            self._cancel("fault", Message("out_of_order", {"detail": detail}))
        self.journal_only("fault", detail=detail)
        self.show(Message("out_of_order", {"detail": detail}))

    def clear_fault(self, *_: object) -> None:
        self.fault_detail = ""

    def show_fault(self, *_: object) -> None:
        self.show(Message("out_of_order", {"detail": "storage" if self.storage_error else self.fault_detail}))
