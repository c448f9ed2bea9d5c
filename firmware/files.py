"""Reading a file a person named, never more than its kind of file can hold.

A path on the command line or in a config may name ``/dev/zero``, ``/dev/urandom`` or a log of many
gigabytes by a slip. Read whole, it took all the memory the box had before anything could say no (a
machine config, a key, a card image alike). Each reader says how much its kind of file can hold; one
byte more is read, to tell, and a longer file is refused as an ``OSError`` that says so, the way a
file that cannot be read at all is.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

KEY_FILE_BYTES = 64 * 1024  # a key file (hex, PEM, a term key's JSON) is a few hundred bytes
IMAGE_FILE_BYTES = 64 * 1024  # a card image (.mfd) is 1,024 bytes; what a wrong size is, its reader says


class FileTooLarge(OSError):
    """Longer than its kind of file can be; ``strerror`` says how long, as far as it could tell."""

    def __init__(self, path: Path, limit: int, size: int | None) -> None:
        found = f"{size} bytes" if size is not None else f"more than {limit} bytes (no regular file)"
        super().__init__(errno.EFBIG, f"{found}; the limit is {limit}", str(path))


def read_capped(path: Path, limit: int) -> bytes:
    """``path``'s bytes, or ``FileTooLarge`` past ``limit`` without reading further."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
        if len(data) > limit:
            found = os.fstat(handle.fileno())
            raise FileTooLarge(path, limit, found.st_size if stat.S_ISREG(found.st_mode) else None)
    return data
