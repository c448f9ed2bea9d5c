"""The issuer's pending credits as this machine holds them (firmware/reporting/credits.py), by card name.

Replaced whole by each newer list, in one commit with the journal entry naming its version. Asked at a
purse card's tap: which credits the issuer still lists for it; the card itself says which it was given.
"""

from __future__ import annotations

from collections.abc import Mapping

from firmware.domain import Credit
from firmware.identity.pseudonym import hotlist_name
from firmware.journal.database import Database
from firmware.journal.held import HeldPush

VERSION = "credits_version"


class CreditsBook(HeldPush):
    version_key = VERSION

    def __init__(self, db: Database, key: bytes) -> None:
        super().__init__(db)
        self.key = key

    def replace(self, version: int, cards: Mapping[str, tuple[Credit, ...]]) -> None:
        """A newer list (joins the current transaction)."""
        self.db.conn.execute("DELETE FROM issuer_credits")
        rows = [(name, *credit) for name, credits in cards.items() for credit in credits]
        self.db.conn.executemany("INSERT INTO issuer_credits (entry, seq, amount, bought) VALUES (?, ?, ?, ?)", rows)
        self.stamp(version)
        self.db.conn.execute(  # a credit the issuer no longer lists was given, here or elsewhere: no longer in doubt
            "DELETE FROM credit_attempts WHERE NOT EXISTS (SELECT 1 FROM issuer_credits c "
            "WHERE c.entry = credit_attempts.entry AND c.seq = credit_attempts.seq)"
        )

    def attempt(self, uid: str, seq: int) -> None:
        """Journal, before the card is written, that credit ``seq`` is being given (joins the transaction)."""
        name = hotlist_name(self.key, uid)
        self.db.conn.execute("INSERT OR IGNORE INTO credit_attempts (entry, seq) VALUES (?, ?)", (name, seq))

    def settle(self, uid: str, given: int) -> None:
        """The card shows every credit up to ``given``: those attempts are settled (joins the transaction)."""
        name = hotlist_name(self.key, uid)
        self.db.conn.execute("DELETE FROM credit_attempts WHERE entry = ? AND seq <= ?", (name, given))

    def in_doubt(self) -> int:
        """Credits this machine began to write on a card that left before it could tell whether it has them."""
        return int(self.db.conn.execute("SELECT COUNT(*) FROM credit_attempts").fetchone()[0])

    def for_card(self, uid: str) -> list[Credit]:
        """The credits the issuer lists for the card, seq ascending."""
        named = hotlist_name(self.key, uid)
        query = "SELECT seq, amount, bought FROM issuer_credits WHERE entry = ? ORDER BY seq"
        rows = self.db.conn.execute(query, (named,)).fetchall()
        return [Credit(int(seq), int(amount), bought) for seq, amount, bought in rows]
