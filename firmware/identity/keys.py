"""The school's term key, kept in the state dir with mode 0600 and never published.

A new key per school term makes pseudonyms unlinkable across terms. The machine only needs the
current key; rotating replaces it (the old pseudonyms stay in the vendor's data, unlinkable).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from firmware.errors import VendingError
from firmware.identity.pseudonym import Pseudonymizer

log = logging.getLogger(__name__)
KEY_FILE = "term_key.json"


class KeyError_(VendingError):
    """The key file is missing, unreadable or malformed."""


def key_path(state_dir: Path) -> Path:
    return state_dir / KEY_FILE


def write_key(state_dir: Path, term: str, key: bytes | None = None) -> Path:
    """Create or replace the term key atomically, readable by the owner only."""
    if not term or len(term) > 32:
        raise KeyError_("a term name must be 1-32 characters, e.g. 2026-1")
    state_dir.mkdir(parents=True, exist_ok=True)
    path = key_path(state_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"term": term, "key": (key or secrets.token_bytes(32)).hex()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return path


def load_key(state_dir: Path) -> Pseudonymizer:
    path = key_path(state_dir)
    try:
        data = json.loads(path.read_text())
        return Pseudonymizer(str(data["term"]), bytes.fromhex(data["key"]))
    except FileNotFoundError:
        raise KeyError_(f"{path}: no term key; create one with `vending keys init --state-dir {state_dir}`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyError_(f"{path}: malformed term key file ({exc.__class__.__name__})") from None


def load_or_create_key(state_dir: Path, term: str = "default") -> Pseudonymizer:
    """For throw-away state dirs (demo, tests): make a key when none exists yet."""
    if not key_path(state_dir).exists():
        write_key(state_dir, term)
        log.info("created a term key for term %s in %s", term, state_dir)
    return load_key(state_dir)
