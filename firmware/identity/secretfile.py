"""Secret files (term keys, private keys): mode 0600 from the first byte, and never silently replaced.

A key written 0644 and chmod-ed afterwards is readable in between; a key overwritten by a second
`keys` command makes every record sealed or pseudonymised with the old one unreadable or unlinkable
for good. So a secret is created with ``O_EXCL`` and mode 0600, and replacing one takes ``force``
(a 0600 temporary file, fsynced, renamed over it).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from firmware.errors import VendingError

log = logging.getLogger(__name__)
PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_DIR = 0o700


class SecretFileError(VendingError):
    """A secret file that exists already, or cannot be created or read."""


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) 0700; an existing directory open to others is reported, not changed."""
    if not path.exists():
        try:
            path.mkdir(parents=True, mode=PRIVATE_DIR)
            os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
            return path
        except FileExistsError:
            pass  # another process (a fleet worker enrolling its machines) made it between the check and here
    if path.is_dir() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is readable by other users; state and key directories should be mode 0700", path)
    return path


def write_secret(path: Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to a new 0600 file; ``force`` replaces an existing one atomically."""
    return _write_new(path, data, force, PRIVATE_FILE)


def write_public(path: Path, data: bytes) -> Path:
    """A key's public half beside it (0644), replaced whole: a symlink in its place is replaced, not written through."""
    return _write_new(path, data, True, PUBLIC_FILE)


def _write_new(path: Path, data: bytes, force: bool, mode: int) -> Path:
    private_dir(path.parent)
    # with force, a fresh name beside it, renamed over it: nothing that was there under another name is touched
    target = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") if force else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise SecretFileError(f"{path} exists already; refusing to overwrite a key (use --force)") from None
    except OSError as exc:
        raise SecretFileError(f"{path}: cannot create: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(target, path)
    except BaseException as exc:
        target.unlink(missing_ok=True)  # half a key is no key (and a temporary one is not left lying about)
        if isinstance(exc, OSError):  # a full disk: name the key it could not write
            raise SecretFileError(f"{path}: cannot write: {exc.strerror or exc}; nothing written") from None
        raise
    return path
