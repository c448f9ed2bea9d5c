"""The machine's books on one SQLite file: the concrete adapters behind the controller's ``Books`` port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from firmware.journal.card_steps import CardCounters, CardSteps
from firmware.journal.commands import CommandLog
from firmware.journal.database import Database
from firmware.journal.inventory import Inventory
from firmware.journal.ledger import SqliteJournal
from firmware.journal.vends import VendLedger, settlement_period
from firmware.journal.wallet import Wallet
from firmware.ports import Payment


@dataclass(frozen=True)
class MachineBooks:
    """Journal, wallet, planogram, vends and answered commands, all joining one transaction.

    ``payment`` is where cards' money lives: the wallet here, or an adapter the node puts in its place
    (the purse on the card, ``firmware.payments.card``), built with the same database.
    """

    db: Database
    journal: SqliteJournal
    wallet: Wallet
    inventory: Inventory
    vends: VendLedger
    commands: CommandLog
    payment: Payment

    @classmethod
    def on(cls, db: Database, currency: str) -> MachineBooks:
        wallet = Wallet(db, currency)
        return cls(db, SqliteJournal(db), wallet, Inventory(db), VendLedger(db), CommandLog(db), wallet)

    def prune(self, before: datetime) -> int:
        """Journal entries and command answers older than ``before``, in one transaction."""
        cutoff = before.isoformat()
        with self.db.atomic("journal"):
            return self.journal.prune(cutoff) + self.commands.prune(cutoff)

    def apply_retention(
        self, now: datetime, today: date, records_days: int, card_days: int, per_card: bool = False
    ) -> None:
        self.prune(now - timedelta(days=records_days))
        self.forget_cards((today - timedelta(days=card_days)).isoformat(), per_card)

    def open_days(self, before_day: str) -> list[str]:
        """Trading days before ``before_day`` after the last closed one: each still owes its day close.

        After the last closed day, not "every day without a close": retention prunes old journal
        entries, and a day closed long ago must never be closed (and settled) a second time.
        """
        row = self.db.conn.execute(
            "SELECT MAX(json_extract(data, '$.day')) FROM journal WHERE kind = 'day_closed'"
        ).fetchone()
        last_closed = str(row[0]) if row and row[0] else ""
        return [day for day in self.vends.trading_days() if last_closed < day < before_day]

    def forget_cards(self, before_day: str, per_card: bool = False) -> int:
        """Blank the card numbers of settled vends on closed days before ``before_day``.

        Only days whose settlement the issuer has acknowledged (no longer in the outbox); with
        ``per_card`` also only days whose settlement period is over with a later day's settlement
        acknowledged: the first day close of a new period settles the previous one per card, the last
        thing that needs the card numbers (acks are cumulative, so a later day acknowledged covers it).
        """
        with self.db.atomic("journal"):
            closed = {
                str(day)
                for (day,) in self.db.conn.execute(
                    "SELECT json_extract(data, '$.day') FROM journal WHERE kind = 'day_closed'"
                )
            }
            waiting = {
                str(day)
                for (day,) in self.db.conn.execute(
                    "SELECT json_extract(payload, '$.day') FROM outbox WHERE stream = 'issuer'"
                )
            }
            settled = closed - waiting
            last_period = max((settlement_period(day) for day in settled), default="")
            due = sorted(day for day in settled if day < before_day)
            period_over = [day for day in due if settlement_period(day) < last_period]
            # a card's steps by counter go to the issuer with the period (whatever the settlement mode)
            CardCounters(self.db).forget(period_over)
            return self.vends.forget_cards(period_over if per_card else due)

    def invariant_total(self) -> int:
        """Wallet balances + takings + money in flight + refunds owed to cards; constant at all times.

        With the purse on the card, the cards' own balances (and debits whose fate a pulled card
        keeps) are added by whoever holds the cards: the simulator's world.
        """
        owed = CardSteps(self.db).owed()
        return self.wallet.total() + self.vends.takings() + self.vends.in_flight() + owed
