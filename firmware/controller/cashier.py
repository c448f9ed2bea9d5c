"""The money path: a debit committed before the motor turns, then exactly one settlement.

Kept apart from the session callbacks so the three durable money steps (debit, drop, refund) read
as one short module: each is one transaction on the books, journaled with the pseudonym and profile
of the card (never its uid), and announced as an event only after it committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from firmware.controller.records import SessionCard, who
from firmware.domain import JournalEntry, SaleRequest, VendRecord
from firmware.entries import SaleEntry
from firmware.errors import SettlementError
from firmware.money import Money
from firmware.ports import Books, GuardianAlerts

Stamp = Callable[..., JournalEntry]  # (kind, txn_id, **data) -> entry stamped with the injected clock
Emit = Callable[..., None]  # (event name, **details)


class Cashier:
    """Debits, completes and refunds vends on the books; never runs a motor or shows a message."""

    def __init__(self, books: Books, machine_id: str, currency: str, stamp: Stamp, emit: Emit,
                 alerts: GuardianAlerts | None = None) -> None:  # fmt: skip
        self.books = books
        self.alerts = alerts
        self.machine_id = machine_id
        self.currency = currency
        self.stamp = stamp
        self.emit = emit
        # what this process debited and has not settled yet, with the card's balance after each money
        # step: the live path needs no read-back (recovery after a restart reads the vends table)
        self._open: dict[str, VendRecord] = {}
        self.balance_after: dict[str, int] = {}

    def debit(self, request: SaleRequest, card: SessionCard | None, at: datetime) -> str:
        """Charge the card and open the vend in one commit; returns the new transaction id.

        Money kept outside the books (the purse on the card) is taken between two commits: the intent
        is durable before the first write to the card, and the vend opens only on a debit the card
        confirmed (``PaymentUnconfirmed`` otherwise, with the intent left for the card's next tap).
        """
        journal, payment = self.books.journal, self.books.payment
        uid, price = request.account.uid, request.price
        txn_id: str | None = None
        if not payment.in_books:
            with journal.atomic("intent"):
                txn_id = journal.next_txn_id(self.machine_id)
                payment.intend(uid, price, txn_id, at)
            payment.take(uid, price, txn_id, at)
        with journal.atomic("debit"):
            txn_id = txn_id or journal.next_txn_id(self.machine_id)
            balance = payment.debit(uid, price, txn_id)
            record = VendRecord(
                txn_id=txn_id,
                slot=request.slot,
                product=request.product_id,
                price=price.amount,
                uid=uid,
                status="debited",
                local_day=request.local_time.date().isoformat(),
                profile=request.account.profile,
            )
            self.books.vends.open(record, at.isoformat())
            journal.append(
                self.stamp(
                    "vend_debited",
                    txn_id,
                    **who(card, txn_id),
                    slot=request.slot,
                    product=request.product_id,
                    price=price.amount,
                )
            )
        self._open[txn_id] = record  # only once committed
        self.balance_after[txn_id] = balance.amount
        self.emit("debited", txn=txn_id, slot=request.slot, price=price.amount)
        return txn_id

    def awaiting(self, txn_id: str) -> VendRecord:
        """The debited vend ``txn_id``; anything else is a bug on the money path."""
        record = self._open.pop(txn_id, None) or self.books.vends.get(txn_id)
        if record is None or record.status != "debited":
            raise SettlementError(f"vend {txn_id} is not awaiting settlement")
        return record

    def complete(self, record: VendRecord, card: SessionCard | None, recovered: bool) -> None:
        """The drop sensor saw it fall: takings, stock −1 and the sale, in one commit."""
        inventory = self.books.inventory
        with self.books.journal.atomic("drop"):
            self.books.vends.settle(record.txn_id, "completed")
            stock = inventory.take_one(record.slot)
            state = inventory.get(record.slot)
            if state is None:
                raise SettlementError(f"vend {record.txn_id}: slot {record.slot} is not in the planogram")
            sale = SaleEntry(
                slot=record.slot,
                product=record.product,
                price=record.price,
                stock=stock,
                capacity=state.capacity,
                recovered=recovered,
                **who(card, record.txn_id),
            )
            self.books.journal.append(self.stamp("vend_completed", record.txn_id, **sale.data()))
            balance = self.balance_after.get(record.txn_id)  # this boot's debit (recovery tells no guardian)
            if self.alerts is not None and balance is not None:
                alert = self.alerts.after_sale(record.uid, record.price, balance, record.local_day)
                if alert is not None:
                    self.books.journal.append(self.stamp("guardian_alert", record.txn_id, **alert))
        self.emit("vended", txn=record.txn_id, slot=record.slot, price=record.price, stock=stock, recovered=recovered)

    def refund(self, record: VendRecord, card: SessionCard | None, recovered: bool, at: datetime) -> None:
        """Nothing fell (or a power cut hides whether it did and the dispenser cannot tell): money back.

        Into the books in the refund's commit; to a card's purse after it, if the card is at hand,
        otherwise owed to the card (in the books) until its next tap here.
        """
        payment = self.books.payment
        with self.books.journal.atomic("refund"):
            balance = payment.refund(record.uid, Money(record.price, self.currency), record.txn_id)
            self.books.vends.settle(record.txn_id, "refunded")
            who_bought = who(card, record.txn_id)
            sale = SaleEntry(
                slot=record.slot, product=record.product, price=record.price, recovered=recovered, **who_bought
            )
            self.books.journal.append(self.stamp("vend_refunded", record.txn_id, **sale.data()))
        if balance is None:
            balance = payment.pay_back(record.uid, at)
        if balance is not None:
            self.balance_after[record.txn_id] = balance.amount
        else:  # owed: the debit's read-back is not what the card will hold, and the display must not say paid
            self.balance_after.pop(record.txn_id, None)
        self.emit("refunded", txn=record.txn_id, slot=record.slot, price=record.price, recovered=recovered)
