"""The issuer's retention forgets operators' refunds a card has been given, never one still owed to a card."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from firmware.identity.signing import Identity
from simulator.backends.credits import PendingCredits
from simulator.backends.store import SqliteReportStore

AMY, BEN = "04A1B2C3", "04B2C3D4"


def test_given_credits_go_with_their_days_and_owed_ones_stay(tmp_path: Path) -> None:
    store = SqliteReportStore(tmp_path / "issuer.db", "issuer")
    try:
        credits = PendingCredits(store, Identity.generate("issuer"), bytes(32))
        for uid, txn in ((AMY, "M-1-0000000000000001"), (BEN, "M-1-0000000000000002")):
            document = {"machine": "M-1", "txn": txn, "card": uid, "amount": 25, "day": "2026-03-02"}
            for sql, params in credits.rows("credit", document):
                store.execute(sql, params)
        store.execute("UPDATE pending_credits SET given = 1 WHERE uid = ?", (AMY,))
        store.expire(30, today=date(2026, 6, 1))
        left = store.execute("SELECT uid, given FROM pending_credits")
        assert left == [(BEN, 0)], "the given one is forgotten with its day; the owed one stays"
        assert credits.pending() == 25
    finally:
        store.close()
