"""The school's term key: kept in the state dir (0600, never published), valid for one term only.

A new key per school term makes pseudonyms unlinkable across terms. The key file says which term it
is for and until when it is valid; the machine refuses to start on an expired key, and picks up a
rotated key without a restart (the runtime asks the keyring to ``refresh`` between events). Nothing
creates a key behind the operator's back: a state dir without one is an error that says what to run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from firmware.errors import VendingError
from firmware.files import KEY_FILE_BYTES, read_capped
from firmware.identity.pseudonym import Pseudonymizer
from firmware.identity.secretfile import write_secret

log = logging.getLogger(__name__)
KEY_FILE = "term_key.json"
TERM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class TermKeyError(VendingError):
    """The term key is missing, malformed, or not valid today."""


@dataclass(frozen=True)
class TermKey:
    term: str
    key: bytes = field(repr=False)
    valid_until: date  # inclusive, in the machine's local calendar
    # the names (never the keys) of the terms this state dir rotated from: a term name names one key, so the
    # school's --terms directory can never hold two keys called 2026-1 (a request would read one of them)
    earlier: tuple[str, ...] = ()


def school_term(day: date) -> tuple[str, date]:
    """The school term ``day`` falls in, as (name, last day): Taiwan's school year has two (學期).

    The first runs from August to January, the second from February to July; ``2026-1`` is the one
    that ends on 2026-07-31 and ``2026-2`` the one that ends on 2027-01-31, the names the docs use.
    """
    if day.month == 1:
        return f"{day.year - 1}-2", date(day.year, 1, 31)
    if day.month >= 8:
        return f"{day.year}-2", date(day.year + 1, 1, 31)
    return f"{day.year}-1", date(day.year, 7, 31)


def key_path(state_dir: Path) -> Path:
    return state_dir / KEY_FILE


def write_key(
    state_dir: Path,
    term: str,
    valid_until: date,
    *,
    key: bytes | None = None,
    force: bool = False,
    earlier: tuple[str, ...] = (),
) -> Path:
    """Create the term key file (0600, O_EXCL); ``force`` replaces an existing one (a rotation, ``earlier``)."""
    if not TERM.fullmatch(term):
        raise TermKeyError(f"term {term!r}: 1-32 letters, digits, '.', '_' or '-', e.g. 2026-1")
    body: dict[str, object] = {"term": term, "key": (key or secrets.token_bytes(32)).hex()}
    body |= {"valid_until": valid_until.isoformat()} | ({"earlier": list(earlier)} if earlier else {})
    return write_secret(key_path(state_dir), json.dumps(body).encode(), force=force)


def read_key(state_dir: Path) -> TermKey:
    path = key_path(state_dir)
    try:
        data = json.loads(read_capped(path, KEY_FILE_BYTES))
        earlier = tuple(str(term) for term in data.get("earlier", []))
        found = TermKey(str(data["term"]), bytes.fromhex(data["key"]), date.fromisoformat(data["valid_until"]), earlier)
    except FileNotFoundError:
        raise TermKeyError(
            f"{path}: no term key; create one with `vending keys init --state-dir {state_dir} --valid-until DATE`"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TermKeyError(f"{path}: malformed term key file ({exc.__class__.__name__})") from None
    if len(found.key) < 32:
        raise TermKeyError(f"{path}: the key must be at least 32 bytes")
    return found


def retire_key(state_dir: Path, term: str) -> Path:
    """End a term for good: overwrite the key file's bytes, flush them, then unlink it.

    With the key gone, nobody -- the school included -- can derive that term's pseudonyms from a card
    again, so the vendor's records of the term can no longer be tied to anyone. Refuses a key of
    another term: retiring the wrong term would silently break the current one.
    """
    path = key_path(state_dir)
    current = read_key(state_dir)
    if current.term != term:
        raise TermKeyError(f"{path} holds term {current.term!r}, not {term!r}; nothing retired")
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(secrets.token_bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()
    return path


def load_key(state_dir: Path) -> Pseudonymizer:
    """The pseudonymizer of the term key in ``state_dir`` (validity is the keyring's business)."""
    term_key = read_key(state_dir)
    return Pseudonymizer(term_key.term, term_key.key)


class TermKeyring:
    """Card uid -> this term's pseudonym, from the key file, reloaded when the file is replaced."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._load()

    def _load(self) -> None:
        self.current = read_key(self.state_dir)
        self._pseudonym = Pseudonymizer(self.current.term, self.current.key)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(key_path(self.state_dir))
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns, found.st_size

    @property
    def term(self) -> str:
        return self.current.term

    def __call__(self, uid: str, txn_id: str) -> str:
        return self._pseudonym(uid, txn_id)

    def check_valid(self, today: date) -> None:
        """Refuse to work on an expired term key: pseudonyms must change when the term does."""
        if today > self.current.valid_until:
            raise TermKeyError(
                f"{key_path(self.state_dir)}: the key for term {self.term} expired on "
                f"{self.current.valid_until.isoformat()}; start the new term with `vending keys rotate`"
            )

    def refresh(self, today: date) -> bool:
        """Load a rotated key if the file changed; a broken or expired replacement keeps the current key."""
        if self._file_stamp() == self._stamp:
            return False
        previous = (self.current, self._pseudonym, self._stamp)
        try:
            self._load()
            self.check_valid(today)
        except TermKeyError as exc:
            self.current, self._pseudonym, self._stamp = previous
            self._stamp = self._file_stamp()  # do not retry the same broken file on every event
            log.error("kept the key for term %s: the new key file is unusable: %s", self.term, exc)
            return False
        log.info("term key rotated: now term %s, valid until %s", self.term, self.current.valid_until)
        return True

    def __repr__(self) -> str:  # never the key
        return f"TermKeyring(term={self.term!r})"
