"""The campus purse on a card in the field: read it, debit it so that a pull never loses or makes money.

A debit of ``d`` from a balance ``v`` (the card's counter ``c``) is three writes, in this order:

1. backup := balance (RESTORE 4, TRANSFER 5): the value before the debit is kept;
2. the log slot of ``c + 1`` := (c + 1, time, machine, d, v - d): what is about to happen;
3. balance := balance - d (DECREMENT 4, TRANSFER 4): the commit; then READ 4 confirms ``v - d``.

Only after the read-back may a machine vend. A card pulled after any write is found, at its next
tap on any machine, in one of three states (``recover``): the newest log entry's balance equals the
balance (nothing in flight: the last debit, if any, was committed); the log is one debit ahead and
the backup equals the balance (logged, not committed: the entry is voided, amount 0, and nothing
was taken); or the balance block is not a value block (torn during its TRANSFER): the backup is
restored first. The counter in the log tells the issuer's settlement which debits exist, so a gap
or a repeat is an incident there. The pattern follows the current-and-previous balance and the
doubled records of an EasyCard dump (``../shared/cards.md`` section 5).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from firmware.cards import mifare as m
from firmware.cards.purse import (
    BACKUP,
    BALANCE,
    CREDIT_SECTOR,
    CREDITS,
    CREDITS_BACKUP,
    LOG_BLOCKS,
    LOG_SECTOR,
    MAX_STEP,
    PURSE_SECTOR,
    RECORD,
    CardError,
    CardRecord,
    LogEntry,
    PurseState,
    Sam,
    card_day,
    credit_refusal,
    credit_seq,
    credit_tag,
    credits_given,
    log_slot,
    machine_tag,
    next_entry,
    spent_on,
)
from firmware.cards.tag import ClassicTag


class InsufficientPurse(CardError):
    """The purse holds less than the price: nothing was written."""


class CreditGiven(CardError):
    """The card's marker shows the pending credit was given already (here or on another machine): nothing written."""


def _open(tag: ClassicTag, sam: Sam, sector: int, key_b: bool = False) -> None:
    key = sam.key_b(tag.uid, sector) if key_b else sam.key_a(tag.uid, sector)
    tag.authenticate(m.trailer_of(sector), key, key_b)


def read_purse(tag: ClassicTag, sam: Sam) -> tuple[PurseState, bytes]:
    """The purse as it is on the card, and the raw balance and credits blocks (which ``recover`` checks)."""
    _open(tag, sam, PURSE_SECTOR)
    raw_balance, raw_backup, raw_record = tag.read(BALANCE), tag.read(BACKUP), tag.read(RECORD)
    record = CardRecord.decode(tag.uid, raw_record, sam)
    _open(tag, sam, LOG_SECTOR)
    entries = [e for e in (LogEntry.decode(tag.read(n)) for n in LOG_BLOCKS) if e is not None]
    entries.sort(key=lambda e: e.counter, reverse=True)
    _open(tag, sam, CREDIT_SECTOR)
    raw_credits = tag.read(CREDITS)
    credits = credits_given(raw_credits, tag.read(CREDITS_BACKUP))
    backup, _ = m.decode_value(raw_backup)
    try:
        balance, _ = m.decode_value(raw_balance)
    except m.FormatError:
        balance = backup  # torn during its TRANSFER: ``recover`` restores it from the backup
    return PurseState(tag.uid, record, balance, backup, tuple(entries), credits), raw_balance + raw_credits


def recover(tag: ClassicTag, sam: Sam) -> PurseState:
    """Read the purse and finish what a pulled card left half done; the state is consistent after."""
    state, raw = read_purse(tag, sam)
    raw_balance, raw_credits = raw[:16], raw[16:]
    try:
        m.decode_value(raw_balance)
    except m.FormatError:
        _open(tag, sam, PURSE_SECTOR)
        tag.restore(BACKUP)
        tag.transfer(BALANCE)
    newest = state.log[0] if state.log else None
    if newest is not None and newest.balance != state.balance and newest.amount:
        if newest.balance != state.balance - newest.amount or state.backup != state.balance:
            raise CardError(
                f"card {tag.uid.hex().upper()}: balance {state.balance}, backup {state.backup} and log entry "
                f"#{newest.counter} (-{newest.amount} -> {newest.balance}) fit no known state: report it to the issuer"
            )
        # logged, never committed: nothing was taken, and the day's spend is what it was before
        void = replace(newest, amount=0, balance=state.balance, day_spent=spent_on(state.log[1:], card_day(newest.at)))
        _open(tag, sam, LOG_SECTOR)
        tag.write(log_slot(void.counter), void.encode())
        state = replace(state, log=(void, *state.log[1:]))
    return _mark_credits(tag, sam, state, raw_credits)


def _mark_credits(tag: ClassicTag, sam: Sam, state: PurseState, raw_credits: bytes) -> PurseState:
    """The pending credits the card was given, as its log shows them: a marker left behind is brought up.

    A credit's own log entry names its seq (``credit_tag``), so a pull between the credit and the
    marker's write is finished here, at the card's next tap on any machine, before any new step; the
    log keeps the entry for three more steps, and each of those runs this first. A marker torn in its
    TRANSFER is restored from its backup, as the balance is.
    """
    try:
        m.decode_value(raw_credits)
        torn = False
    except m.FormatError:
        torn = True
    shown = max((seq for entry in state.log if (seq := credit_seq(entry)) is not None), default=0)
    if not torn and shown <= state.credits:
        return state  # the usual tap: nothing to write
    _open(tag, sam, CREDIT_SECTOR, key_b=True)
    if torn:
        tag.restore(CREDITS_BACKUP)
        tag.transfer(CREDITS)
    if shown > state.credits:
        _set_credits(tag, state.credits, shown)
    return replace(state, credits=max(state.credits, shown))


def _set_credits(tag: ClassicTag, current: int, seq: int) -> None:
    """Marker := ``seq`` (the sector open with key B): backup first, then INCREMENT and TRANSFER."""
    tag.restore(CREDITS)
    tag.transfer(CREDITS_BACKUP)
    tag.increment(CREDITS, seq - current)
    tag.transfer(CREDITS)


def debit(tag: ClassicTag, sam: Sam, amount: int, machine: str, at: datetime, counter: int | None = None) -> PurseState:
    """Take ``amount`` from the purse; the state after, confirmed by reading the balance back.

    ``CardGone`` from any step means the outcome is known only at the card's next tap (``recover``);
    the caller journals its intent first (with ``counter``, the number the step must get: a card
    that moved on since it was read is refused before anything is written) and vends only on a
    returned state.
    """
    state = _expect(recover(tag, sam), counter)
    if not 0 < amount <= MAX_STEP:
        raise CardError(f"a debit is 1 to {MAX_STEP}, not {amount}")
    if state.balance < amount:
        raise InsufficientPurse(f"the purse holds NT${state.balance}, less than NT${amount}")
    entry = next_entry(state, amount, machine, at)
    _open(tag, sam, PURSE_SECTOR)
    tag.restore(BALANCE)
    tag.transfer(BACKUP)
    _open(tag, sam, LOG_SECTOR)
    tag.write(log_slot(entry.counter), entry.encode())
    _open(tag, sam, PURSE_SECTOR)
    tag.decrement(BALANCE, amount)
    tag.transfer(BALANCE)
    return _confirmed(tag, state, entry)


def credit(
    tag: ClassicTag,
    sam: Sam,
    amount: int,
    terminal: str,
    at: datetime,
    refund: bool = False,
    counter: int | None = None,
) -> PurseState:
    """Add ``amount`` with key B: a top-up at a store, or (``refund``) a machine giving back a debit it did not vend.

    The same three writes as a debit (backup, log entry with the amount negative, INCREMENT and
    TRANSFER), so ``recover`` finishes or undoes a pulled credit the same way. A refund of a purchase
    made this card day also takes the amount off the day's spend (a guardian's limit counts what was
    bought); a top-up, or a refund of another day's purchase, does not: the caller says which.
    """
    state = _expect(recover(tag, sam), counter)
    return _credit(tag, sam, state, next_entry(state, -amount, terminal, at, refund), amount)


def apply_credit(
    tag: ClassicTag, sam: Sam, seq: int, amount: int, at: datetime, counter: int | None = None, refund: bool = False
) -> PurseState:
    """Give the card the issuer's pending credit ``seq`` (an operator's refund), on any machine, once.

    The credit is a refund step whose log entry names ``seq``; then the card's marker says ``seq``
    (``_mark_credits`` finishes that if the card is pulled between). A card that was given ``seq``
    already is left as it is: ``CreditGiven``. ``refund``: given on the card day of the purchase it
    gives back, it gives back that day's allowance too; on any other day the money only, so a
    guardian's daily limit is never exceeded by it.
    """
    state = _expect(recover(tag, sam), counter)
    if seq <= state.credits:
        raise CreditGiven(f"card {tag.uid.hex().upper()} was given pending credit {seq} already")
    after = _credit(tag, sam, state, next_entry(state, -amount, "", at, refund, tag=credit_tag(seq)), amount)
    _open(tag, sam, CREDIT_SECTOR, key_b=True)
    _set_credits(tag, state.credits, seq)
    return replace(after, credits=seq)


def credit_fits(state: PurseState, amount: int) -> bool:
    """Whether the purse can take ``amount`` in one step: a full purse (MAX_BALANCE) refuses a credit."""
    return credit_refusal(state.balance, amount) is None


def _credit(tag: ClassicTag, sam: Sam, state: PurseState, entry: LogEntry, amount: int) -> PurseState:
    if (refusal := credit_refusal(state.balance, amount)) is not None:
        raise CardError(refusal, "amount")
    _open(tag, sam, PURSE_SECTOR, key_b=True)
    tag.restore(BALANCE)
    tag.transfer(BACKUP)
    _open(tag, sam, LOG_SECTOR)
    tag.write(log_slot(entry.counter), entry.encode())
    _open(tag, sam, PURSE_SECTOR, key_b=True)
    tag.increment(BALANCE, amount)
    tag.transfer(BALANCE)
    return _confirmed(tag, state, entry)


def _expect(state: PurseState, counter: int | None) -> PurseState:
    if counter is not None and state.counter + 1 != counter:
        card = state.uid.hex().upper()
        raise CardError(f"card {card}: at step #{state.counter}, not #{counter - 1}: it was used since it was read")
    return state


def step_fate(state: PurseState, counter: int, amount: int, terminal: str, at: datetime) -> bool | None:
    """Whether the step a machine journaled as #``counter`` (``amount`` taken, negative: credited) is on the card.

    Read after ``recover``: the entry is there with the amount (made), voided (not made), or the card
    never reached that counter (not made). ``None`` when the log has moved past it (three later steps):
    only the issuer's settlement, which sees every counter, can tell then.
    """
    entry = state.entry(counter)
    if entry is not None:
        mine = entry.machine == machine_tag(terminal) and entry.at == at.replace(microsecond=0)
        return mine and entry.amount == amount
    if state.counter < counter:
        return False
    return None if len(state.log) == len(LOG_BLOCKS) else False


def _confirmed(tag: ClassicTag, before: PurseState, entry: LogEntry) -> PurseState:
    """Read the balance back: only a balance the card confirms lets the machine act on it."""
    confirmed, _ = m.decode_value(tag.read(BALANCE))
    if confirmed != entry.balance:
        card = tag.uid.hex().upper()
        raise CardError(f"card {card}: read back NT${confirmed} after the step, not NT${entry.balance}")
    return PurseState(tag.uid, before.record, confirmed, before.balance, (entry, *before.log[:2]), before.credits)
