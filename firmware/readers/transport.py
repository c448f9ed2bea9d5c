"""The byte pipe to a reader: ``serial.serial_for_url`` so a tty, a pty, socket:// and loop:// all work.

Only reads, writes and closes; it knows nothing of frames. pyserial is imported lazily, so the
firmware imports without it.
"""

from __future__ import annotations

import errno
import os
import stat

from firmware.errors import VendingError


class ReaderOffline(VendingError):
    """The reader is unplugged, silent or its port cannot be opened."""


class SerialTransport:
    def __init__(self, url: str, baudrate: int, timeout: float = 0.05) -> None:
        import serial

        if (kind := _not_a_port(url)) is not None:  # opened read-write, then "Inappropriate ioctl for device"
            raise ReaderOffline(f"cannot open {url}: not a serial port but {kind}")
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ReaderOffline(f"cannot open {url}: {_reason(exc)}") from None
        self.url = url

    def read(self, size: int = 256) -> bytes:
        try:
            waiting = max(1, min(size, self.port.in_waiting or 1))
            return bytes(self.port.read(waiting))
        except Exception as exc:  # noqa: BLE001 - termios.error, SerialException, OSError: the device is gone
            raise ReaderOffline(f"{self.url}: read failed: {exc}") from None

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as exc:  # noqa: BLE001 - tcdrain on a vanished pty raises termios.error
            raise ReaderOffline(f"{self.url}: write failed: {exc}") from None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a port that is already gone
            pass


def _not_a_port(url: str) -> str | None:
    """What a path that is there is, when it is no character device (a tty, a pty); None for a URL or a device."""
    if "://" in url:
        return None
    try:
        mode = os.stat(url).st_mode
    except OSError:
        return None  # gone, or not ours to look at: opening it says which
    if stat.S_ISCHR(mode):
        return None
    return "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a file"


def _reason(exc: Exception) -> str:
    """Pyserial's message says the errno twice; a missing port also says where to look for the right one."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return "no such port (`vending reader list` shows the serial ports this computer has)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (on Linux, add your user to the dialout group and log in again)"
    if code == errno.EBUSY:
        return "the port is busy (another program has it open)"
    text = str(exc)
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text
