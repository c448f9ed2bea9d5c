"""A party's database keeps its orders under one key, the party's: the first key that signed there.

Every order the issuer's people give on its database (an account opened, topped up, linked or capped; a
reviewer's verdict on a purse step) is kept signed, so the history can be checked against the issuer's
public key. A tool pointed at another party's key (`--key keys/vendor.key`) would have applied the order
and kept a signature nobody can check it against: so the database remembers the key id of its first
signer -- the issuer's backend at its first start, as deployed -- and refuses any other, naming both,
before anything changes. The lost-card list is kept there too, and the school's database keeps the
guardians' controls the same way (``school_signer``): a list or a push signed by another issuer's or
school's key would be recorded and refused by every machine, leaving a lost card usable or a
guardian's limit unapplied while the party's records say otherwise.
"""

from __future__ import annotations

import sqlite3

from firmware.errors import VendingError
from firmware.identity.signing import Identity
from simulator.backends.schemas import SIGNER_TABLES
from simulator.backends.store import SqliteReportStore


class ForeignSigner(VendingError):
    """A key that is not the one this party's database keeps its orders under."""


def pin(store: SqliteReportStore, identity: Identity) -> None:
    """Remember ``identity`` as the database's signer, or refuse it if another is remembered (own transaction)."""
    with store.atomic() as conn:
        check(conn, identity)


def check(conn: sqlite3.Connection, identity: Identity, option: str = "--key") -> None:
    """As ``pin``, inside the caller's transaction: the order and the signer's check commit together.

    ``option``: how the caller's user gave the key (``--keys DIR`` for the list and controls tools).
    """
    party = identity.party
    table = SIGNER_TABLES[party]
    row = conn.execute(f"SELECT kid FROM {table}").fetchone()
    if row is None:
        conn.execute(f"INSERT INTO {table} (kid) VALUES (?)", (identity.kid,))
    elif row[0] != identity.kid:
        raise ForeignSigner(
            f"{option}: key {identity.kid[:12]}… is not the {party}'s key this database keeps its orders under "
            f"({str(row[0])[:12]}…); give the {party}'s own key ({party}.key)"
        )
