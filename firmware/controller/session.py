"""The controller model: the callbacks and guards named in ``machine.py``.

Every durable step runs inside ``journal.atomic()`` before the machine acts on it: the debit is
committed before the motor turns, the drop before stock is shown, the refund before the display
says so. Callbacks ignore the trigger's positional arguments they do not need (``*_``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from firmware import crashpoints
from firmware.config.machine import MachineSetup
from firmware.controller.cashier import Cashier
from firmware.controller.faults import Faults
from firmware.controller.machine import BUSY, SESSION, State, Triggers, build_machine
from firmware.controller.records import EventSink, Hardware, Pseudonym, SessionCard, Transaction, who
from firmware.controller.service import Service
from firmware.controller.timers import Timers
from firmware.domain import CardAccount, CardTap, Denial, SaleRequest, SlotState, VendRecord
from firmware.entries import DeniedEntry
from firmware.errors import CardNotRead, PaymentUnconfirmed, SettlementError, StorageError
from firmware.messages import Message
from firmware.money import Money
from firmware.ports import Books, GuardianAlerts, SalesPolicy, Technicians

log = logging.getLogger(__name__)


class Controller(Timers, Service, Faults, Triggers):
    """The model object the state machine drives (machine.py, dispatch.py); its state lives in ``self.state``."""

    state: State

    def __init__(
        self,
        setup: MachineSetup,
        hardware: Hardware,
        books: Books,
        policy: SalesPolicy,
        pseudonym: Pseudonym,
        events: EventSink | None = None,
        policy_factory: Callable[[MachineSetup], SalesPolicy] | None = None,
        alerts: GuardianAlerts | None = None,
        technicians: Technicians | None = None,
    ) -> None:
        self.setup = setup
        self.config = setup.config
        self.hw = hardware
        self.books = books
        self.policy = policy
        self.policy_factory = policy_factory
        self.pseudonym = pseudonym
        self._events: EventSink | None = events  # None: nobody listens, and no event is built
        self.selection: str | None = None
        self.card: SessionCard | None = None
        self.session_started: datetime | None = None
        self.state_deadline: datetime | None = None
        self.txn_id: str | None = None
        self.unconfirmed = Denial("card_removed", Message("denied.card_removed"))  # why the last debit did not happen
        self.fault_detail = ""
        self.storage_error: str | None = None
        self.last_transaction: Transaction | None = None
        self.alerts = alerts  # guardians told through the school (controls: school)
        self.technicians = technicians  # route technicians' cards (technicians: in the config)
        self.technician_pick: dict[str, int] | None = None  # a technician's visit: what was short, per slot
        self.door_is_open = False  # the service door as its switch last said (a card alone ends no visit while open)
        self.cashier = Cashier(books, self.config.id, self.config.currency, self.entry, self.emit, alerts)
        self.machine = build_machine(self)

    @property
    def busy(self) -> bool:
        """A vend is between authorisation and the end of its session: nothing else may change now."""
        return self.state in BUSY

    @property
    def serving(self) -> bool:
        """A customer is at the machine: from the first selection or tap to the end of the session.

        What the display showed them (a price, a slot to sell from) holds until they are done, so remote
        commands wait for this to pass (``CommandProcessor.apply_from``).
        """
        return self.state in SESSION or self.state in BUSY

    # ---- the outside world's entry points -------------------------------------------------------
    def present(self, tap: CardTap) -> None:
        """A card was read: a technician's opens service mode; any other is looked up once for the session."""
        if self.technicians is not None and self.technicians.recognises(tap.uid):
            self.dispatch("technician")  # never a payment: no wallet, purse or issuer is asked
            return
        try:
            account = self.books.payment.lookup(tap)
        except CardNotRead:
            self.dispatch("card_unread")
            return
        self.dispatch("tap", tap, account)

    def dispatch(self, trigger: str, *args: Any) -> None:
        """Fire a trigger for a key, tap, door or timer; a storage failure stops sales instead of crashing.

        Whatever the failed write was, its transaction rolled back: nothing half-written exists, and a
        vend that had physically dropped is still ``debited`` and is settled by recovery later.
        """
        try:
            self.trigger(trigger, *args)
        except StorageError as exc:
            self.storage_failed(str(exc))

    # ---- start-up and recovery ---------------------------------------------------------------
    def start(self, door_open: bool = False) -> None:
        """Settle any vend a power cut interrupted, then open for sales (or service if the door is open)."""
        for record in self.books.vends.pending():
            dropped = bool(self.hw.dispenser.was_dispensed(record.txn_id))
            card = self._recovered_card(record)
            if dropped:
                self.cashier.complete(record, card, recovered=True)
            else:
                self.cashier.refund(record, card, recovered=True, at=self.now())
            self.last_transaction = Transaction.recovered(record, dropped, card, self.now())
        self.poll()  # reports held for a window that ended while the power was off go out now
        self.emit("power_on", state=self.state.value)
        self.journal_only("powered_on", quiet=True)
        if door_open:
            self.door_open()
        else:
            self.show_welcome()

    # ---- guards ------------------------------------------------------------------------------
    def slot_sellable(self, slot: str, *_: object) -> bool:
        state = self.books.inventory.get(slot)
        return state is not None and state.enabled and state.stock > 0

    def card_known(self, tap: CardTap, account: CardAccount | None, *_: object) -> bool:
        return account is not None

    # ---- session callbacks ---------------------------------------------------------------------
    def remember_selection(self, slot: str, *_: object) -> None:
        self.selection = slot
        self.session_started = self.session_started or self.now()
        self.emit("selected", slot=slot)

    def remember_card(self, tap: CardTap, account: CardAccount | None, *_: object) -> None:
        if account is None:
            raise SettlementError("remember_card without an account (the card_known guard was bypassed)")
        self.card = SessionCard(account, self.pseudonym)
        self.session_started = self.session_started or self.now()
        self.emit("card", profile=account.profile, reader=tap.reader)  # the visit is named with its transaction

    def clear_session(self, *_: object) -> None:
        self.selection = None
        self.card = None
        self.session_started = None
        self.state_deadline = None
        self.txn_id = None
        self.cashier.balance_after.clear()

    def prompt_for_card(self, *_: object) -> None:
        self.state_deadline = self.now() + timedelta(seconds=self.config.timeouts.card)
        slot = self._slot()
        self.show(Message("selected", {"slot": slot.slot, "price": slot.price, **self._names(slot)}))

    def prompt_for_selection(self, *_: object) -> None:
        self.state_deadline = self.now() + timedelta(seconds=self.config.timeouts.selection)
        self.show(Message("card_read", {"balance": self._card().account.balance.amount}))

    def authorise(self, *_: object) -> None:
        request = self._sale_request()
        denial = self.policy.evaluate(request)
        if denial is None:
            self.approve(request)
        else:
            self.deny(denial)

    def debit_card(self, request: SaleRequest, *_: object) -> None:
        """Charges exactly what the policy approved (the request it evaluated, not a second reading)."""
        try:
            self.txn_id = self.cashier.debit(request, self.card, self.now())
        except PaymentUnconfirmed as exc:
            log.warning("no vend: %s", exc)
            self.txn_id = None
            self.unconfirmed = Denial(exc.reason, Message(f"denied.{exc.reason}", exc.details), exc.details)

    def debit_confirmed(self, *_: object) -> bool:
        return self.txn_id is not None

    def deny_unconfirmed(self, *_: object) -> None:
        """No debit: the card left mid-debit (its next tap settles it) or the account's issuer declined."""
        self._deny(self.unconfirmed, reselect=False)

    def run_motor(self, *_: object) -> None:
        slot = self._slot()
        txn_id = self._txn_id()
        self.show(Message("vending", self._names(slot)))
        dropped = self.hw.dispenser.vend(slot.slot, txn_id)
        crashpoints.reached("dispense.after_motor")
        self.emit("dispensed" if dropped else "no_drop", txn=txn_id, slot=slot.slot)
        if dropped:
            self.drop_detected()
        else:
            self.no_drop()

    def confirm_drop(self, *_: object) -> None:
        self.cashier.complete(self.cashier.awaiting(self._txn_id()), self._card(), recovered=False)

    def finish_vend(self, *_: object) -> None:
        names, balance = self._names(self._slot()), self._balance()
        self._finish("vended", None)
        self.show(Message("vended", {**names, "balance": balance}))
        self.settled()

    def refund_card(self, *_: object) -> None:
        record = self.cashier.awaiting(self._txn_id())
        self.cashier.refund(record, self._card(), recovered=False, at=self.now())
        self.take_out_if_jammed(record.slot)
        self._finish("refunded", "no_drop")
        paid = record.txn_id in self.cashier.balance_after
        key = "refunded" if paid else "refund_owed"  # the card left before it could be credited
        self.show(Message(key, {"price": record.price, "balance": self._balance()}))
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
        self.door_is_open = True
        if self.state in SESSION:
            self._cancel("door_open", Message("door_open"))
        self.journal_only("door_opened")
        self.show(Message("door_open"))

    def note_door_closed(self, *_: object) -> None:
        self.door_is_open = False

    def door_held_open(self, *_: object) -> bool:
        return self.door_is_open

    def ask_to_hold_card(self, *_: object) -> None:
        self.emit("card_unread")
        self.show(Message("card_unread"))

    def ask_to_close(self, *_: object) -> None:
        self.show(Message("service.close_door"))

    def show_welcome(self, *_: object) -> None:
        self.show(Message("welcome"))

    def show_vend_in_progress(self, *_: object) -> None:
        self.show(Message("vend_in_progress"))

    # ---- helpers -----------------------------------------------------------------------------
    def show(self, message: Message) -> None:
        self.hw.display.show(message)
        if self._events is not None:  # the texts are rendered for a listener; the display renders its own
            self.emit("display", key=message.key, en=message.en, zh=message.zh)

    def emit(self, name: str, **details: Any) -> None:
        if self._events is not None:
            self._events(self.now(), name, details)

    def _names(self, slot: SlotState) -> dict[str, str]:
        """The slot's product name in both display languages, for messages."""
        name = self.setup.catalog.products[slot.product].name
        return {"name_zh": name.zh_tw, "name_en": name.en}

    def _card(self) -> SessionCard:
        if self.card is None:
            raise SettlementError(f"{self.state.value}: this step needs a card in session")
        return self.card

    def _txn_id(self) -> str:
        if self.txn_id is None:
            raise SettlementError(f"{self.state.value}: this step needs a debited transaction")
        return self.txn_id

    def _slot(self) -> SlotState:
        state = self.books.inventory.get(self.selection) if self.selection is not None else None
        if state is None:
            raise SettlementError(f"{self.state.value}: this step needs a selected slot, got {self.selection!r}")
        return state

    def _balance(self) -> int:
        """The card's balance after this session's money step (the cashier read it back in that commit)."""
        known = self.cashier.balance_after.pop(self._txn_id(), None)
        return known if known is not None else self.books.payment.balance(self._card().account.uid).amount

    def _recovered_card(self, record: VendRecord) -> SessionCard | None:
        """The card of a vend a power cut interrupted, as its visit was named: from the vend's own record."""
        account = self.books.payment.account(record.uid)
        if account is None and record.profile:
            account = CardAccount(record.uid, record.profile, Money(0, self.config.currency))
        return SessionCard(account, self.pseudonym) if account is not None else None

    def _sale_request(self) -> SaleRequest:
        slot = self._slot()
        account = self._card().account
        local = self.now().astimezone(self.config.zone)
        return SaleRequest(
            slot=slot.slot,
            product_id=slot.product,
            product=self.setup.catalog.products[slot.product],
            price=Money(slot.price, self.config.currency),
            account=account,
            local_time=local,
            spend=self._spend(account, local.date().isoformat()),
        )

    def _spend(self, account: CardAccount, local_day: str) -> Callable[[], Money]:
        """The card's spend on ``local_day``, as a rule with a daily limit will ask for it (most cards have none)."""
        if (known := account.spent_today) is not None:  # the card's own log: every machine's purchases that day
            return lambda: known
        return lambda: Money(self.books.vends.spent_on(account.uid, local_day), self.config.currency)

    def _finish(self, outcome: str, reason: str | None, txn_id: str | None = None, slot: str | None = None,
                with_card: bool = True) -> None:  # fmt: skip
        slot = slot or self.selection
        self.last_transaction = Transaction.of(
            txn_id or self.txn_id or "",
            outcome,
            reason,
            slot,
            self.books.inventory.get(slot) if slot else None,
            self.card if with_card else None,
            self.now(),
        )

    def _deny(self, denial: Denial, slot: str | None = None, with_card: bool = True, reselect: bool = True) -> None:
        slot = slot or self.selection
        state = self.books.inventory.get(slot) if slot else None
        card = self.card if with_card else None
        journal = self.books.journal
        with journal.atomic("journal"):
            txn_id = journal.next_txn_id(self.config.id)
            product, price = (state.product, state.price) if state else (None, None)
            record = DeniedEntry(
                reason=denial.reason, slot=slot, product=product, price=price, detail=denial.detail, **who(card, txn_id)
            )
            journal.append(self.entry("denied", txn_id, **record.data()))
            if card is not None:
                self.tell_guardian(card.account.uid, denial, txn_id)
        self._finish("denied", denial.reason, txn_id=txn_id, slot=slot, with_card=with_card)
        self.emit("denied", txn=txn_id, reason=denial.reason, slot=slot, **who(card, txn_id))
        self.show(self._keep_card_briefly(denial.message) if card is not None and reselect else denial.message)

    def _keep_card_briefly(self, denial: Message) -> Message:
        """After a denial the card stays only for the reselection window, and the display says so."""
        ends = self.now() + timedelta(seconds=(window := self.config.timeouts.reselect))
        self.state_deadline = min(self.state_deadline, ends) if self.state_deadline else ends
        return replace(denial, note=Message("reselect", {"seconds": window}))

    def _cancel(self, reason: str, message: Message) -> None:
        with (journal := self.books.journal).atomic("journal"):
            txn_id = journal.next_txn_id(self.config.id)
            visit = who(self.card, txn_id)
            journal.append(self.entry("cancelled", txn_id, reason=reason, slot=self.selection, **visit))
        self._finish("cancelled", reason, txn_id=txn_id)
        self.emit("cancelled", txn=txn_id, reason=reason)
        self.show(message)
