"""One running machine per state dir: a second process on the same books is refused, not let in.

Two controllers on one state dir would sell from one wallet and stock without seeing each other's
sessions, and each numbers its reports from what it read at start: the second's report collides
with the first's in the outbox (one seq, two reports), its commit fails, and both machines stop
selling on a storage failure with a vend in flight left to recovery. ``vending serve`` twice with
the default state dir (two terminals on one laptop) did exactly that. The lock is the kernel's
(``flock``): a process that dies, a power cut, lets it go by itself, so there is nothing stale to
clean up at the next start.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from firmware.errors import VendingError
from firmware.identity.secretfile import PRIVATE_FILE

LOCK_FILE = "machine.lock"  # holds the pid of the machine that has the books, for the message


class StateDirInUse(VendingError):
    """The state dir's books are held by another running machine."""


class StateLock:
    """The exclusive hold on a state dir's books, from ``take`` until ``release`` (or the process's end)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, state_dir: Path) -> StateLock:
        """Hold ``state_dir`` for this machine, or ``StateDirInUse`` naming the process that holds it."""
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateDirInUse(
                f"{state_dir}: another running machine has these books (pid {holder}); stop it first, "
                "or give this one another state dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
