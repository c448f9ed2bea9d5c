"""The issuer's side of the lost-card hotlist: which cards are listed, the list's versions, publishing them.

The issuer keeps the listed cards (by uid: it issued them) in its own database; each change is a new
version. Publishing sends the change as a delta and the whole list, retained, both signed by the
issuer and sealed with the hotlist key it shares with its machines (firmware/reporting/hotlist.py).
The list is valid for ``valid_hours`` from publishing: a machine whose list has expired follows its
stale policy, so the issuer republishes it at least that often (``vending issuer hotlist publish``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from firmware.identity.pseudonym import hotlist_name, normalise_uid
from firmware.identity.signing import Identity
from firmware.reporting.hotlist import DELTA_TOPIC, FULL_TOPIC, compose_delta, compose_full
from simulator.backends.party_file import open_owned
from simulator.backends.schemas import SIGNER_SCHEMA
from simulator.backends.signer import check as check_signer

SCHEMA = (
    SIGNER_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS hotlist_cards (uid TEXT PRIMARY KEY, since TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hotlist_versions (
    version INTEGER PRIMARY KEY, at TEXT NOT NULL, added TEXT NOT NULL, removed TEXT NOT NULL
);
"""
)


@dataclass(frozen=True)
class Change:
    version: int
    added: frozenset[str]  # uids
    removed: frozenset[str]


class HotlistRegistry:
    """The listed cards on the issuer's SQLite file (the same file as its backend's)."""

    def __init__(self, path: Path) -> None:
        self.conn = open_owned(path, "issuer", SCHEMA, isolation_level=None)

    def change(self, add: set[str], remove: set[str], at: datetime, signer: Identity) -> Change:
        """List and unlist cards in one commit: a new version (what actually changed; nothing, to republish).

        ``signer``, who will sign the list, must be the issuer this database keeps its orders under
        (signer.py): a list under another key would be recorded here and refused by every machine.
        """
        add, remove = {normalise_uid(u) for u in add}, {normalise_uid(u) for u in remove}
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            check_signer(self.conn, signer, "--keys")
            listed = self.listed()
            added, removed = add - listed, remove & listed
            self.conn.executemany("INSERT INTO hotlist_cards (uid, since) VALUES (?, ?)",
                                  ((uid, at.isoformat()) for uid in sorted(added)))  # fmt: skip
            self.conn.executemany("DELETE FROM hotlist_cards WHERE uid = ?", ((uid,) for uid in sorted(removed)))
            version = self.version() + 1
            self.conn.execute(
                "INSERT INTO hotlist_versions (version, at, added, removed) VALUES (?, ?, ?, ?)",
                (version, at.isoformat(), ",".join(sorted(added)), ",".join(sorted(removed))),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return Change(version, frozenset(added), frozenset(removed))

    def listed(self) -> set[str]:
        return {str(uid) for (uid,) in self.conn.execute("SELECT uid FROM hotlist_cards")}

    def version(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM hotlist_versions").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


def messages(registry: HotlistRegistry, change: Change | None, identity: Identity, key: bytes, now: datetime,
             valid_hours: int) -> list[tuple[str, str, bool]]:  # fmt: skip
    """``(topic, payload, retain)``: the change as a delta (if any), then the whole list, retained."""
    expires = now + timedelta(hours=valid_hours)
    version = registry.version()
    found: list[tuple[str, str, bool]] = []
    if change is not None and change.version == version:
        add = {hotlist_name(key, uid) for uid in change.added}
        remove = {hotlist_name(key, uid) for uid in change.removed}
        found.append((DELTA_TOPIC, compose_delta(identity, key, version, now, expires, add, remove), False))
    names = {hotlist_name(key, uid) for uid in registry.listed()}
    found.append((FULL_TOPIC, compose_full(identity, key, version, now, expires, names), True))
    return found
