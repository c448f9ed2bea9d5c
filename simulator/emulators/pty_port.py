"""A pseudo-terminal that a device emulator owns: the host opens the slave path like /dev/ttyUSB0.

The device thread blocks in ``read`` until the host writes, another thread calls ``wake`` (a card
placed, a fault set, a stop), or its own timeout passes: an idle emulator uses no CPU.

Fault hooks: noise between frames, frames split into small writes, and unplug (close) / replug (a
new pty behind the same --link symlink). With ``pace`` set, bytes leave at the speed of a real
UART at ``baud`` (10 bits a byte, 8N1), so latency measured through the pty includes wire time.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from pathlib import Path

from firmware.errors import VendingError

PTY_DIRS = ("/dev/pts/", "/dev/ttyp")  # where os.openpty's slaves live (Linux, BSD)
BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit
PACE_CHUNK_S = 0.001  # paced writes go out in about a millisecond's worth of bytes at a time


def refuse_to_replace(link: Path) -> None:
    """``--link`` may name nothing yet, or a link to a pseudo-terminal gone with the emulator that left it.

    The link is replaced when the emulator starts or replugs and removed when it stops: given an
    existing file (``--link /etc/passwd``, as root) the file was replaced by the link and then gone;
    given the link of an emulator still running, that emulator lost its path (and the machine reading
    it its reader) to the second one, and when the second stopped the path was gone.
    """
    if link.is_symlink():
        target = os.readlink(link)
        if target.startswith(PTY_DIRS) and not os.path.exists(target):
            return
        if target.startswith(PTY_DIRS):
            raise VendingError(
                f"--link {link}: the link of {target}, a pseudo-terminal still open (another emulator's); "
                "give another path, or remove the link if nothing runs there; nothing replaced"
            )
        raise VendingError(f"--link {link}: a link to {target}, not to a pseudo-terminal; nothing replaced")
    if link.exists():
        raise VendingError(f"--link {link}: a file is there; the link is made only where nothing is, nothing replaced")


class PtyPort:
    def __init__(self, link: Path | None = None, seed: int = 0, baud: int = 115200, pace: bool = False) -> None:
        self.link = link
        self.rng = random.Random(seed)
        self.noise = False
        self.split = False
        self.baud = baud
        self.pace = pace
        self.trace: list[tuple[str, bytes]] | None = None  # ("host"|"device", bytes) in wire order, when set
        self.master = self.slave = -1
        self.path = ""
        self.plugged = False
        self.lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._unplug_requested = threading.Event()
        self._unplugged = threading.Event()
        self.plug()

    def plug(self) -> str:
        if self.link is not None:
            refuse_to_replace(self.link)  # before a pty is opened: a refusal leaves nothing open
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        if self.link is not None:
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.{self.rng.getrandbits(32):08x}.tmp")
            tmp.symlink_to(self.path)  # a fresh name: never follows or removes anything that was there
            os.replace(tmp, self.link)
        self.plugged = True
        self.wake()
        return self.path

    def wake(self) -> None:
        """Return the device thread from ``read`` now (something changed that it must look at)."""
        try:
            os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (it is already awake) or closed (stopping)

    def unplug(self, timeout: float = 5.0) -> None:
        """Ask the device thread to close the pty between two reads.

        Closing an fd another thread is selecting on is a race, and the number could be reused
        underneath it.
        """
        self._unplugged.clear()
        self._unplug_requested.set()
        self.wake()
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

    def read(self, timeout: float | None = 0.05) -> bytes:
        """What the host wrote; ``b""`` when woken or timed out. ``None`` waits until one of them."""
        if self._unplug_requested.is_set():
            self._close_fds()
        watched = [self._wake_r] + ([self.master] if self.plugged else [])
        try:
            ready, _, _ = select.select(watched, [], [], timeout)
        except (OSError, ValueError):
            return b""
        if self._wake_r in ready:
            os.read(self._wake_r, 512)
        if self._unplug_requested.is_set():
            self._close_fds()
            return b""
        if self.plugged and self.master in ready:
            try:
                data = os.read(self.master, 1024)
            except OSError:
                return b""
            if self.trace is not None:
                self.trace.append(("host", data))
            return data
        return b""

    def wire_time(self, size: int) -> float:
        """Seconds ``size`` bytes take on a real line at the current speed."""
        return size * BITS_PER_BYTE / self.baud

    def write(self, data: bytes) -> None:
        if not self.plugged:
            return
        if self.noise:
            data = bytes(self.rng.choice((0x13, 0x37, 0xA5, 0x5A)) for _ in range(self.rng.randint(1, 4))) + data
        chunks = [data]
        if self.split:
            cut = self.rng.randint(1, max(1, len(data) - 1))
            chunks = [data[:cut], data[cut:]]
        if self.pace:
            per_chunk = max(1, int(self.baud * PACE_CHUNK_S / BITS_PER_BYTE))
            chunks = [chunk[i : i + per_chunk] for chunk in chunks for i in range(0, len(chunk), per_chunk)]
        if self.trace is not None:
            self.trace.append(("device", data))
        due = time.monotonic()
        with self.lock:
            for chunk in chunks:
                if self.pace:  # the chunk's last byte is on the host's side once its bits have gone by
                    due += self.wire_time(len(chunk))
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                try:
                    os.write(self.master, chunk)
                except OSError:
                    return
                if self.split:
                    time.sleep(0.002)

    def close(self) -> None:
        self._close_fds()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1  # never write to a number the process may have reused
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.path:
            self.link.unlink()  # only our own link: never a file, nor a link somebody pointed elsewhere
