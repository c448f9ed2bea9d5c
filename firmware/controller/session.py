"""The controller model: the callbacks and guards named in ``machine.py``.

Every durable step runs inside ``journal.atomic()`` before the machine acts on it: the debit is
committed before the motor turns, the drop before stock is shown, the refund before the display
says so. Callbacks ignore the trigger's positional arguments they do not need (``*_``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from firmware import crashpoints
from firmware.config.machine import MachineSetup, with_lockouts
from firmware.errors import StorageError
from firmware.controller.machine import SESSION, State, build_machine
from firmware.journal.inventory import Inventory, SlotState
from firmware.journal.ledger import SqliteJournal
from firmware.journal.vends import VendLedger, VendRecord
from firmware.journal.wallet import Wallet
from firmware.messages import Message
from firmware.money import Money
from firmware.ports import CardAccount, CardTap, Clock, Denial, Dispenser, Display, JournalEntry, SaleRequest, SalesPolicy
from firmware.reporting.pseudonym import Pseudonymizer, normalise_uid

log = logging.getLogger(__name__)

EventSink = Callable[[datetime, str, dict[str, Any]], None]


@dataclass(frozen=True)
class Transaction:
    """A finished transaction as the scenario ``expect`` step sees it; the uid is never printed."""

    txn_id: str
    outcome: str  # vended | refunded | denied | cancelled
    reason: str | None
    slot: str | None
    product: str | None
    price: int | None
    profile: str | None
    pseudonym: str | None
    at: datetime
    card_uid: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Hardware:
    """The physical ports the controller drives."""

    clock: Clock
    display: Display
    dispenser: Dispenser


@dataclass(frozen=True)
class Books:
    """The durable ports: journal, wallet, planogram and vend ledger on one database."""

    journal: SqliteJournal
    wallet: Wallet
    inventory: Inventory
    vends: VendLedger


class Controller:
    """The model object ``transitions`` drives; its state lives in ``self.state``."""

    state: State

    def __init__(self, setup: MachineSetup, hardware: Hardware, books: Books, policy: SalesPolicy,
                 pseudonym: Pseudonymizer, events: EventSink | None = None,
                 policy_factory: Callable[[MachineSetup], SalesPolicy] | None = None) -> None:
        self.setup = setup
        self.config = setup.config
        self.hw = hardware
        self.books = books
        self.policy = policy
        self.policy_factory = policy_factory
        self.pseudonym = pseudonym
        self._events = events or (lambda at, name, details: None)
        self.selection: str | None = None
        self.account: CardAccount | None = None
        self.session_started: datetime | None = None
        self.state_deadline: datetime | None = None
        self.txn_id: str | None = None
        self.pending_denial: Denial | None = None
        self.fault_detail = ""
        self.storage_error: str | None = None
        self.last_transaction: Transaction | None = None
        self.machine = build_machine(self)

    # ---- time -------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.hw.clock.now()

    def local_now(self) -> datetime:
        return self.now().astimezone(self.config.zone)

    @property
    def next_deadline(self) -> datetime | None:
        """When the session times out if nothing happens (state timer or overall session limit)."""
        if self.state not in SESSION or self.session_started is None:
            return None
        session_end = self.session_started + timedelta(seconds=self.config.timeouts.session)
        return min(d for d in (self.state_deadline, session_end) if d is not None)

    def poll(self) -> None:
        """Fire the timeout if its deadline has passed; the runner or serve loop calls this."""
        deadline = self.next_deadline
        if deadline is not None and self.now() >= deadline:
            self.dispatch("timeout")

    # ---- the outside world's entry point --------------------------------------------------------
    def dispatch(self, trigger: str, *args: Any) -> None:
        """Fire a trigger for a key, tap, door or timer; a storage failure stops sales instead of crashing.

        Whatever the failed write was, its transaction rolled back: nothing half-written exists, and a
        vend that had physically dropped is still ``debited`` and is settled by recovery later.
        """
        try:
            self.trigger(trigger, *args)
        except StorageError as exc:
            self.storage_failed(str(exc))

    def storage_failed(self, detail: str) -> None:
        """Disk full or read-only: no journal means no sales. Skips callbacks: nothing can be written."""
        log.error("storage failure, sales stopped: %s", detail)
        self.storage_error = detail
        self.machine.set_state(State.OUT_OF_ORDER)
        self.clear_session()
        self.hw.display.show(Message("out_of_order", {"detail": "storage"}))
        self.emit("storage_failed", detail=detail)

    def recheck_storage(self, headroom_bytes: int = 256 * 1024) -> bool:
        """After the operator freed space or remounted: a real durable write, with room to spare, decides.

        The probe writes ``headroom_bytes`` and removes them in the same transaction, so a disk with
        only a few bytes of slack does not reopen sales only to fail on the next vend.
        """
        db = self.books.journal.db
        try:
            with db.atomic("journal"):
                db.set_meta("headroom_probe", "x" * headroom_bytes)
                db.conn.execute("DELETE FROM meta WHERE key = 'headroom_probe'")
                self.books.journal.append(self._entry("storage_restored", None))
        except StorageError as exc:
            self.storage_error = str(exc)
            return False
        self.storage_error = None
        self.emit("storage_restored")
        return True

    def storage_ok(self, *_: object) -> bool:
        return self.storage_error is None

    # ---- start-up and recovery ---------------------------------------------------------------
    def start(self, door_open: bool = False) -> None:
        """Settle any vend a power cut interrupted, then open for sales (or service if the door is open)."""
        for record in self.books.vends.pending():
            dropped = self.hw.dispenser.was_dispensed(record.txn_id)
            if dropped:
                self._settle_drop(record, recovered=True)
            else:
                self._settle_refund(record, recovered=True)
            account = self.books.wallet.lookup(record.uid)
            self.last_transaction = Transaction(
                record.txn_id, "vended" if dropped else "refunded", None if dropped else "power_cut",
                record.slot, record.product, record.price, account.profile if account else None,
                self.pseudonym(record.uid), self.now(), record.uid)
        self.emit("power_on", state=self.state.value)
        if door_open:
            self.door_open()
        else:
            self.show_welcome()

    # ---- guards ------------------------------------------------------------------------------
    def slot_sellable(self, slot: str, *_: object) -> bool:
        state = self.books.inventory.get(slot)
        return state is not None and state.enabled and state.stock > 0

    def card_known(self, tap: CardTap, *_: object) -> bool:
        return self.books.wallet.lookup(normalise_uid(tap.uid)) is not None

    # ---- session callbacks ---------------------------------------------------------------------
    def remember_selection(self, slot: str, *_: object) -> None:
        self.selection = slot
        self.session_started = self.session_started or self.now()
        self.emit("selected", slot=slot)

    def remember_card(self, tap: CardTap, *_: object) -> None:
        self.account = self.books.wallet.lookup(normalise_uid(tap.uid))
        self.session_started = self.session_started or self.now()
        assert self.account is not None
        self.emit("card", card=self.pseudonym(self.account.uid), profile=self.account.profile, reader=tap.reader)

    def clear_session(self, *_: object) -> None:
        self.selection = None
        self.account = None
        self.session_started = None
        self.state_deadline = None
        self.txn_id = None

    def prompt_for_card(self, *_: object) -> None:
        self.state_deadline = self.now() + timedelta(seconds=self.config.timeouts.card)
        slot = self._slot()
        product = self.setup.catalog.products[slot.product]
        self.show(Message("selected", {"slot": slot.slot, "price": slot.price,
                                       "name_zh": product.name.zh_tw, "name_en": product.name.en}))

    def prompt_for_selection(self, *_: object) -> None:
        self.state_deadline = self.now() + timedelta(seconds=self.config.timeouts.selection)
        assert self.account is not None
        self.account = self.books.wallet.lookup(self.account.uid)
        assert self.account is not None
        self.show(Message("card_read", {"balance": self.account.balance.amount}))

    def authorise(self, *_: object) -> None:
        denial = self.policy.evaluate(self._sale_request())
        if denial is None:
            self.approve()
        else:
            self.deny(denial)

    def debit_card(self, *_: object) -> None:
        request = self._sale_request()
        account = request.account
        with self.books.journal.atomic("debit"):
            txn_id = self.books.journal.next_txn_id(self.config.id)
            self.books.wallet.debit(account.uid, request.price, txn_id)
            self.books.vends.open(VendRecord(
                txn_id=txn_id, slot=request.slot, product=request.product_id, price=request.price.amount,
                uid=account.uid, status="debited", local_day=request.local_time.date().isoformat()),
                self.now().isoformat())
            self.books.journal.append(self._entry("vend_debited", txn_id, **self._who(account),
                                                  slot=request.slot, product=request.product_id,
                                                  price=request.price.amount))
        self.txn_id = txn_id
        self.emit("debited", txn=txn_id, slot=request.slot, price=request.price.amount)

    def run_motor(self, *_: object) -> None:
        slot = self._slot()
        product = self.setup.catalog.products[slot.product]
        self.show(Message("vending", {"name_zh": product.name.zh_tw, "name_en": product.name.en}))
        assert self.txn_id is not None
        dropped = self.hw.dispenser.vend(slot.slot, self.txn_id)
        crashpoints.reached("dispense.after_motor")
        self.emit("dispensed" if dropped else "no_drop", txn=self.txn_id, slot=slot.slot)
        if dropped:
            self.drop_detected()
        else:
            self.no_drop()

    def confirm_drop(self, *_: object) -> None:
        self._settle_drop(self._current_vend(), recovered=False)

    def finish_vend(self, *_: object) -> None:
        slot = self._slot()
        product = self.setup.catalog.products[slot.product]
        balance = self._balance()
        self._finish("vended", None)
        self.show(Message("vended", {"name_zh": product.name.zh_tw, "name_en": product.name.en,
                                     "balance": balance}))
        self.settled()

    def refund_card(self, *_: object) -> None:
        record = self._current_vend()
        self._settle_refund(record, recovered=False)
        self._finish("refunded", "no_drop")
        self.show(Message("refunded", {"price": record.price, "balance": self._balance()}))
        self.settled()

    def close_session(self, *_: object) -> None:
        self.end_session()

    def record_denial(self, denial: Denial, *_: object) -> None:
        self._deny(denial)
        self.selection = None  # the card stays in session; the refused selection does not

    def deny_selection(self, slot: str, *_: object) -> None:
        state = self.books.inventory.get(slot)
        if state is None:
            self._deny(Denial("unknown_slot", Message("denied.unknown_slot", {"slot": slot})), slot=slot)
        elif not state.enabled:
            self._deny(Denial("slot_disabled", Message("denied.slot_disabled", {"slot": slot})), slot=slot)
        else:
            self._deny(Denial("sold_out", Message("denied.sold_out", {"slot": slot})), slot=slot)

    def deny_unknown_card(self, *_: object) -> None:
        self._deny(Denial("unknown_card", Message("denied.unknown_card")), with_card=False)

    def deny_out_of_service(self, *_: object) -> None:
        self._deny(Denial("out_of_service", Message("denied.out_of_service")), with_card=False)

    def record_user_cancel(self, *_: object) -> None:
        self._cancel("user_cancel", Message("cancelled"))

    def record_timeout(self, *_: object) -> None:
        self._cancel("timeout", Message("timeout"))

    def close_for_door(self, *_: object) -> None:
        if self.state in SESSION:
            self._cancel("door_open", Message("door_open"))
        self.journal_only("door_opened")
        self.show(Message("door_open"))

    def close_for_fault(self, detail: str = "fault", *_: object) -> None:
        self.fault_detail = detail
        if self.state in SESSION:
            self._cancel("fault", Message("out_of_order", {"detail": detail}))
        self.journal_only("fault", detail=detail)
        self.show(Message("out_of_order", {"detail": detail}))

    def show_welcome(self, *_: object) -> None:
        self.show(Message("welcome"))

    def show_vend_in_progress(self, *_: object) -> None:
        self.show(Message("vend_in_progress"))

    # ---- service operations (door open, or remote commands) -----------------------------------
    def restock(self, counts: Mapping[str, int]) -> None:
        """Set slots' fill levels (what a technician does with the door open)."""
        with self.books.journal.atomic("stock"):
            for slot, count in counts.items():
                self.books.inventory.set_stock(slot, count)
            self.books.journal.append(self._entry("restocked", None, counts=dict(counts),
                                                  stock=self.books.inventory.stock()))
        self.emit("restocked", counts=dict(counts))

    def set_lockouts(self, specs: list[dict[str, Any]]) -> None:
        """Replace the lockout windows (remote ``set_lockout``); persisted, and in force from the next sale.

        Must run inside the caller's journal transaction so the change and its answer commit together.
        """
        from pydantic import ValidationError

        from firmware.config.machine import Lockout

        try:
            lockouts = [Lockout.model_validate(spec) for spec in specs]
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"lockouts: {where + ': ' if where else ''}{first['msg']}") from None
        self.books.journal.db.set_meta("lockouts", json.dumps(specs, sort_keys=True))
        self.apply_setup(with_lockouts(self.setup, lockouts))

    def apply_setup(self, setup: MachineSetup) -> None:
        self.setup = setup
        self.config = setup.config
        if self.policy_factory is not None:
            self.policy = self.policy_factory(setup)

    def close_day(self, local_day: str) -> None:
        """End of a trading day: the issuer's settlement for that day is derived from this entry."""
        self.journal_only("day_closed", day=local_day)

    def journal_only(self, kind: str, **data: Any) -> None:
        with self.books.journal.atomic("journal"):
            self.books.journal.append(self._entry(kind, None, **data))
        self.emit(kind, **data)

    # ---- helpers -----------------------------------------------------------------------------
    def show(self, message: Message) -> None:
        self.hw.display.show(message)
        self.emit("display", key=message.key, en=message.en, zh=message.zh)

    def emit(self, name: str, **details: Any) -> None:
        self._events(self.now(), name, details)

    def _entry(self, kind: str, txn_id: str | None, **data: Any) -> JournalEntry:
        return JournalEntry(kind, self.now(), txn_id, data)

    def _who(self, account: CardAccount | None) -> dict[str, Any]:
        if account is None:
            return {"pseudonym": None, "profile": None}
        return {"pseudonym": self.pseudonym(account.uid), "profile": account.profile}

    def _slot(self) -> SlotState:
        assert self.selection is not None
        state = self.books.inventory.get(self.selection)
        assert state is not None
        return state

    def _balance(self) -> int:
        assert self.account is not None
        return self.books.wallet.balance(self.account.uid).amount

    def _sale_request(self) -> SaleRequest:
        slot = self._slot()
        assert self.account is not None
        local = self.local_now()
        return SaleRequest(
            slot=slot.slot, product_id=slot.product, product=self.setup.catalog.products[slot.product],
            price=Money(slot.price, self.config.currency), account=self.account, local_time=local,
            spent_today=Money(self.books.vends.spent_on(self.account.uid, local.date().isoformat()),
                              self.config.currency),
        )

    def _current_vend(self) -> VendRecord:
        assert self.txn_id is not None
        record = self.books.vends.get(self.txn_id)
        assert record is not None and record.status == "debited"
        return record

    def _settle_drop(self, record: VendRecord, recovered: bool) -> None:
        with self.books.journal.atomic("drop"):
            self.books.vends.settle(record.txn_id, "completed")
            stock = self.books.inventory.take_one(record.slot)
            state = self.books.inventory.get(record.slot)
            assert state is not None
            self.books.journal.append(self._entry(
                "vend_completed", record.txn_id, slot=record.slot, product=record.product, price=record.price,
                stock=stock, capacity=state.capacity, recovered=recovered, **self._who(self.books.wallet.lookup(record.uid))))
        self.emit("vended", txn=record.txn_id, slot=record.slot, price=record.price, stock=stock, recovered=recovered)

    def _settle_refund(self, record: VendRecord, recovered: bool) -> None:
        with self.books.journal.atomic("refund"):
            self.books.wallet.refund(record.uid, Money(record.price, self.config.currency), record.txn_id)
            self.books.vends.settle(record.txn_id, "refunded")
            self.books.journal.append(self._entry(
                "vend_refunded", record.txn_id, slot=record.slot, product=record.product, price=record.price,
                recovered=recovered, **self._who(self.books.wallet.lookup(record.uid))))
        self.emit("refunded", txn=record.txn_id, slot=record.slot, price=record.price, recovered=recovered)

    def _finish(self, outcome: str, reason: str | None, txn_id: str | None = None,
                slot: str | None = None, with_card: bool = True) -> Transaction:
        account = self.account if with_card else None
        slot = slot or self.selection
        state = self.books.inventory.get(slot) if slot else None
        txn = Transaction(
            txn_id=txn_id or self.txn_id or "", outcome=outcome, reason=reason, slot=slot,
            product=state.product if state else None, price=state.price if state else None,
            profile=account.profile if account else None,
            pseudonym=self.pseudonym(account.uid) if account else None,
            at=self.now(), card_uid=account.uid if account else None,
        )
        self.last_transaction = txn
        return txn

    def _deny(self, denial: Denial, slot: str | None = None, with_card: bool = True) -> None:
        slot = slot or self.selection
        state = self.books.inventory.get(slot) if slot else None
        account = self.account if with_card else None
        with self.books.journal.atomic("journal"):
            txn_id = self.books.journal.next_txn_id(self.config.id)
            self.books.journal.append(self._entry(
                "denied", txn_id, reason=denial.reason, slot=slot, product=state.product if state else None,
                price=state.price if state else None, **self._who(account), detail=denial.detail))
        self._finish("denied", denial.reason, txn_id=txn_id, slot=slot, with_card=with_card)
        self.emit("denied", txn=txn_id, reason=denial.reason, slot=slot, **self._who(account))
        self.show(denial.message)

    def _cancel(self, reason: str, message: Message) -> None:
        with self.books.journal.atomic("journal"):
            txn_id = self.books.journal.next_txn_id(self.config.id)
            self.books.journal.append(self._entry("cancelled", txn_id, reason=reason, slot=self.selection,
                                                  **self._who(self.account)))
        self._finish("cancelled", reason, txn_id=txn_id)
        self.emit("cancelled", txn=txn_id, reason=reason)
        self.show(message)
