"""Debits on the emulated card with the chip commands a reader sends: a pull after any write loses no money."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from firmware.cards import mifare as m
from firmware.cards.purse import BALANCE, CARD_ZONE, CardError, CardRecord, Sam, issue_image, put, read_image
from firmware.cards.purse_io import InsufficientPurse, credit, debit, read_purse, recover
from firmware.cards.tag import CardGone, CardRefused, ClassicTag
from simulator.emulators.mifare_classic import ClassicCard

SAM = Sam(bytes(range(32)))
UID = bytes.fromhex("04A1B2C3")
AT = datetime(2026, 3, 2, 2, 5, tzinfo=UTC)
WRITES_PER_DEBIT = 3  # backup, log record, balance


def new_card(purse: int = 500) -> ClassicCard:
    return ClassicCard(bytearray(issue_image(UID, CardRecord("student", "353301", date(2026, 3, 2)), purse, SAM)))


def tap(card: ClassicCard) -> ClassicTag:
    """The card enters the field (again): selected, and reached through the same bytes a PN532 carries."""
    card.select()
    card.torn, card.writes, card.tear_after = False, 0, None

    def exchange(data: bytes) -> bytes:
        answer = card.exchange(data)
        if answer is None:
            raise CardGone("the card left the field") if card.torn else CardRefused(f"refused {data[:2].hex()}")
        return answer

    return ClassicTag(card.uid, exchange)


def test_a_debit_takes_the_amount_logs_it_and_keeps_the_balance_before_as_backup():
    card = new_card()
    after = debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    assert (after.balance, after.backup, after.counter) == (475, 500, 1)
    again = debit(tap(card), SAM, 30, "TPE-DAAN-JH-02", AT)  # another machine, the same purse
    state, _ = read_purse(tap(card), SAM)
    assert (state.balance, state.counter, [e.amount for e in state.log]) == (445, 2, [30, 25]) == (
        again.balance, again.counter, [30, 25],
    )  # fmt: skip
    assert read_image(bytes(card.image), SAM).balance == 445, "what the reader did is what the image holds"


def test_a_purse_short_of_the_price_is_refused_before_anything_is_written():
    card = new_card(20)
    before = bytes(card.image)
    with pytest.raises(InsufficientPurse, match="holds NT\\$20, less than NT\\$25"):
        debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    assert bytes(card.image) == before


@pytest.mark.parametrize("pulled_after", range(1, WRITES_PER_DEBIT + 1))
@pytest.mark.parametrize(("step", "change"), [(debit, -25), (credit, 100)], ids=["debit", "credit"])
def test_a_card_pulled_after_any_write_is_made_whole_at_its_next_tap(step, change: int, pulled_after: int):
    card = new_card()
    torn = tap(card)
    card.tear_after = pulled_after
    with pytest.raises(CardGone):
        step(torn, SAM, abs(change), "TPE-DAAN-JH-01", AT)
    state = recover(tap(card), SAM)  # the next tap, on this machine or another
    committed = pulled_after == WRITES_PER_DEBIT
    assert state.balance == 500 + (change if committed else 0), "money moved only with the commit"
    newest = state.log[0] if state.log else None
    assert newest is None or newest.balance == state.balance, "the log agrees with the purse"
    assert state.balance + sum(entry.amount for entry in state.log) == 500, "nothing lost, nothing made"
    assert debit(tap(card), SAM, 10, "TPE-DAAN-JH-01", AT).balance == state.balance - 10, "the card works on"


def test_a_balance_block_torn_during_its_transfer_is_restored_from_the_backup():
    card = new_card()
    debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    put(card.image, BALANCE, b"\x5a" * 16)  # as if power went mid-TRANSFER of the commit: not a value block
    state = recover(tap(card), SAM)
    assert m.decode_value(card.read_block(BALANCE))[0] == 500 == state.balance
    assert state.log[0].amount == 0, "the debit the backup undid is voided in the log"


def test_a_card_from_another_issuer_is_refused_by_its_keys_and_a_debit_must_take_something():
    card = new_card()
    with pytest.raises(CardRefused):
        read_purse(tap(card), Sam(b"\x07" * 32))
    with pytest.raises(CardError, match="a debit is 1 to 32767, not 0"):
        debit(tap(card), SAM, 0, "TPE-DAAN-JH-01", AT)


class KeyAOnly(Sam):
    """A reader whose secure access module holds the right key A but not key B."""

    def key_b(self, uid: bytes, sector: int) -> bytes:
        return b"\x00" * 6


def test_a_credit_needs_key_b_and_is_logged_as_a_negative_step():
    card = new_card()
    debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    after = credit(tap(card), SAM, 200, "7-ELEVEN-0042", AT)  # a top-up at a store
    assert (after.balance, after.backup, after.counter, after.log[0].amount) == (675, 475, 2, -200)
    with pytest.raises(CardError, match="past its ceiling of NT\\$10000"):
        credit(tap(card), SAM, 9400, "7-ELEVEN-0042", AT)
    with pytest.raises(CardRefused):
        credit(tap(card), KeyAOnly(bytes(range(32))), 10, "TPE-DAAN-JH-01", AT)
    assert read_image(bytes(card.image), SAM).balance == 675


def test_the_newest_log_entry_carries_the_day_s_spend_across_machines_refunds_and_days():
    card = new_card()
    debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    debit(tap(card), SAM, 30, "TPE-DAAN-JH-02", AT)  # another machine of the school
    credit(tap(card), SAM, 200, "7-ELEVEN-0042", AT)  # a top-up is not spending
    after = debit(tap(card), SAM, 20, "TPE-DAAN-JH-01", AT)
    today = AT.astimezone(CARD_ZONE).date()
    assert after.spent_on(today) == 75, "four steps, three slots: the day's total is still whole"
    refunded = credit(tap(card), SAM, 20, "TPE-DAAN-JH-01", AT, refund=True)
    assert refunded.spent_on(today) == 55, "a debit given back is not spent"
    tomorrow = debit(tap(card), SAM, 10, "TPE-DAAN-JH-01", AT + timedelta(days=1))
    assert (tomorrow.spent_on(today + timedelta(days=1)), tomorrow.spent_on(today)) == (10, 0)


def test_a_voided_debit_gives_the_day_s_spend_back():
    card = new_card()
    debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    torn = tap(card)
    card.tear_after = 2  # backup and log written, the balance not
    with pytest.raises(CardGone):
        debit(torn, SAM, 30, "TPE-DAAN-JH-01", AT)
    state = recover(tap(card), SAM)
    assert (state.balance, state.log[0].amount, state.spent_on(AT.astimezone(CARD_ZONE).date())) == (475, 0, 25)
