"""A pseudo-terminal that a device emulator owns: the host opens the slave path like /dev/ttyUSB0.

Fault hooks: noise between frames, frames split into small writes, a corrupted next frame, a device
that stops answering, and unplug (close) / replug (a new pty behind the same --link symlink).
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from pathlib import Path


class PtyPort:
    def __init__(self, link: Path | None = None, seed: int = 0) -> None:
        self.link = link
        self.rng = random.Random(seed)
        self.noise = False
        self.split = False
        self.master = self.slave = -1
        self.path = ""
        self.plugged = False
        self.lock = threading.Lock()
        self._unplug_requested = threading.Event()
        self._unplugged = threading.Event()
        self.plug()

    def plug(self) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.path)
            os.replace(tmp, self.link)
        self.plugged = True
        return self.path

    def unplug(self, timeout: float = 5.0) -> None:
        """Ask the device thread to close the pty between two reads.

        Closing an fd another thread is selecting on is a race, and the number could be reused
        underneath it.
        """
        self._unplugged.clear()
        self._unplug_requested.set()
        if not self._unplugged.wait(timeout):
            self._close_fds()  # no device thread running: do it here

    def _close_fds(self) -> None:
        with self.lock:
            self.plugged = False
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.master = self.slave = -1
        self._unplug_requested.clear()
        self._unplugged.set()

    def read(self, timeout: float = 0.05) -> bytes:
        if self._unplug_requested.is_set():
            self._close_fds()
        if not self.plugged:
            time.sleep(timeout)
            return b""
        try:
            ready, _, _ = select.select([self.master], [], [], timeout)
            return os.read(self.master, 1024) if ready else b""
        except (OSError, ValueError):
            return b""

    def write(self, data: bytes) -> None:
        if not self.plugged:
            return
        if self.noise:
            data = bytes(self.rng.choice((0x13, 0x37, 0xA5, 0x5A)) for _ in range(self.rng.randint(1, 4))) + data
        chunks = [data]
        if self.split:
            cut = self.rng.randint(1, max(1, len(data) - 1))
            chunks = [data[:cut], data[cut:]]
        with self.lock:
            for chunk in chunks:
                try:
                    os.write(self.master, chunk)
                except OSError:
                    return
                if self.split:
                    time.sleep(0.002)

    def close(self) -> None:
        self._close_fds()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
