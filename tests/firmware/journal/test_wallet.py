"""The machine's wallet takes a day's cards in one statement; a card it knows keeps its balance and controls."""

from __future__ import annotations

from pathlib import Path

from firmware.domain import Guardian
from firmware.journal.database import Database
from firmware.journal.wallet import Wallet
from firmware.money import Money


def test_cards_issued_again_on_a_later_day_keep_their_balance_and_controls(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine.db")
    try:
        wallet = Wallet(db)
        with db.atomic("journal"):
            wallet.issue("04A1B2C3D4E5F6", "student", 200, Guardian(daily_limit=50))
            wallet.debit("04A1B2C3D4E5F6", Money(25, "TWD"), "t-1")
        with db.atomic("journal"):  # the next day: the school's whole list again, one card new
            wallet.issue_missing([("04A1B2C3D4E5F6", "student", 200), ("04B2C3D4E5F607", "staff", 300)])
        amy, ben = wallet.account("04A1B2C3D4E5F6"), wallet.account("04B2C3D4E5F607")
        assert amy is not None and amy.balance == Money(175, "TWD") and amy.guardian.daily_limit == 50
        assert ben is not None and (ben.profile, ben.balance, ben.guardian) == ("staff", Money(300, "TWD"), Guardian())
        assert wallet.total() == 475
    finally:
        db.close()
