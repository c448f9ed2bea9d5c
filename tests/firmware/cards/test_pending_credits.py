"""The issuer's pending credits on the emulated card: given once on any machine, whenever the card is pulled.

An operator's refund of a purse card's sale is a credit the issuer lists; the first machine of the school
the card meets writes it, as a refund step whose log entry names the credit's seq, then raises the card's
marker. A pull after any write is finished at the next tap on any machine (``recover``): the credit is on
the card once, or not at all and still to give; the card works on.
"""

from __future__ import annotations

import pytest

from firmware.cards import mifare as m
from firmware.cards.purse import CREDITS, card_day, credit_seq, put, read_image
from firmware.cards.purse_io import CreditGiven, apply_credit, debit, recover
from firmware.cards.tag import CardGone
from tests.firmware.cards.test_purse_io import AT, SAM, new_card, tap

WRITES_PER_CREDIT = 3 + 2  # backup, log entry, balance; then the marker's backup and the marker


def test_a_pending_credit_is_given_once_and_the_card_says_so_on_every_machine():
    card = new_card()
    debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    after = apply_credit(tap(card), SAM, 1, 25, AT)
    assert (after.balance, after.credits, credit_seq(after.log[0])) == (500, 1, 1)
    before = bytes(card.image)
    with pytest.raises(CreditGiven):
        apply_credit(tap(card), SAM, 1, 25, AT)  # another machine holding the same list
    assert bytes(card.image) == before, "nothing written"
    assert read_image(bytes(card.image), SAM).credits == 1
    assert apply_credit(tap(card), SAM, 2, 10, AT).balance == 510, "the next credit still goes on"


@pytest.mark.parametrize("pulled_after", range(1, WRITES_PER_CREDIT))  # after the last one, nothing is left to do
def test_a_card_pulled_during_a_credit_gets_it_exactly_once(pulled_after: int):
    card = new_card()
    torn = tap(card)
    card.tear_after = pulled_after
    with pytest.raises(CardGone):
        apply_credit(torn, SAM, 1, 40, AT)
    state = recover(tap(card), SAM)  # the next tap, on any machine
    given = state.balance == 540
    assert state.balance in (500, 540) and state.credits == (1 if given else 0), "the marker agrees with the purse"
    if given:
        with pytest.raises(CreditGiven):
            apply_credit(tap(card), SAM, 1, 40, AT)
    else:
        apply_credit(tap(card), SAM, 1, 40, AT)
    final = recover(tap(card), SAM)
    assert (final.balance, final.credits) == (540, 1), "given exactly once"
    for _ in range(4):  # three more steps push the credit's entry out of the log: the marker remembers it
        debit(tap(card), SAM, 1, "TPE-DAAN-JH-01", AT)
    with pytest.raises(CreditGiven):
        apply_credit(tap(card), SAM, 1, 40, AT)


def test_a_marker_torn_in_its_transfer_is_restored_and_brought_up_from_the_log():
    card = new_card()
    apply_credit(tap(card), SAM, 3, 20, AT)
    put(card.image, CREDITS, b"\x5a" * 16)  # power went mid-TRANSFER of the marker: not a value block
    state = recover(tap(card), SAM)
    assert state.credits == 3 and m.decode_value(card.read_block(CREDITS))[0] == 3
    assert state.balance == 520


def test_an_issuers_credit_gives_the_money_back_not_the_days_allowance():
    """The list names no purchase day: the credit may be for another day's sale, so a guardian's daily
    limit (which counts the day's spend on the card's log) is not loosened by it."""
    card = new_card()
    debit(tap(card), SAM, 25, "TPE-DAAN-JH-01", AT)
    spent = recover(tap(card), SAM).spent_on(card_day(AT))
    after = apply_credit(tap(card), SAM, 1, 25, AT)
    assert after.balance == 500 and spent == 25
    assert after.spent_on(card_day(AT)) == 25
