"""The issuer's accounts: decisions, debits keyed on the txn, outcomes applied once, hostile requests refused.

Requests and answers go through the real wire code (signed, sealed) without a broker: the broker
path is tested in tests/firmware/payments/test_account_mode.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from firmware.domain import IssuerAnswer
from firmware.reporting.authorisation import answer_id, compose_answer, compose_request, open_answer, read_request
from firmware.reporting.wire import WireError
from simulator.backends.accounts import AccountBook
from simulator.backends.store import Report, SqliteReportStore
from simulator.dev_keys import DevKeys

MACHINE, OTHER = "TPE-DAAN-JH-01", "TPE-DAAN-JH-02"
MINOR, ADULT = "04A1B2C3", "04B2C3D4"
DAY = "2026-03-02"


@pytest.fixture
def keys(tmp_path: Path) -> DevKeys:
    keys = DevKeys(tmp_path / "keys")
    keys.machine(MACHINE)
    keys.machine(OTHER)
    return keys


@pytest.fixture
def book(tmp_path: Path, keys: DevKeys):
    store = SqliteReportStore(tmp_path / "issuer.db", "issuer")
    book = AccountBook(store)
    book.order(keys.issuer, {"order": "open", "card": MINOR, "profile": "student", "born": "2011-05-01", "day": DAY})
    book.order(keys.issuer, {"order": "topup", "card": MINOR, "amount": 100})
    book.order(keys.issuer, {"order": "open", "card": ADULT, "profile": "staff", "born": "1980-01-01", "day": DAY})
    book.order(keys.issuer, {"order": "topup", "card": ADULT, "amount": 100})
    yield book
    store.close()


def ask(keys: DevKeys, book: AccountBook, kind: str, inside: dict, machine: str = MACHINE) -> IssuerAnswer:
    """One request from ``machine`` through the wire code both ways, decided by ``book``."""
    _, wire, reply = compose_request(keys.machine(machine), machine, kind, inside, keys.seal_public)
    request = read_request(wire.encode(), machine, lambda env: keys.enrolment.verify(machine, env), keys.seal_private)
    answer = compose_answer(keys.issuer, request, book.decide(request))
    _, sealed = answer_id(answer.encode(), machine, lambda env: keys.trust.authorities.verify(env, parties=("issuer",)))
    return open_answer(sealed, reply)


def authorise(txn: str, card: str = ADULT, amount: int = 30) -> dict:
    return {"card": card, "day": DAY, "txn": txn, "amount": amount, "currency": "TWD"}


def test_a_minor_pays_only_with_a_guardian_linked_and_within_the_cap(keys: DevKeys, book: AccountBook):
    assert ask(keys, book, "inquiry", {"card": MINOR, "day": DAY}).linked is False
    assert ask(keys, book, "authorise", authorise("t1", MINOR)).reason == "card_not_linked"
    book.order(keys.issuer, {"order": "link", "card": MINOR, "guardian": "mum"})
    book.order(keys.issuer, {"order": "cap", "card": MINOR, "daily_cap": 50})
    assert ask(keys, book, "authorise", authorise("t2", MINOR)).approved
    refused = ask(keys, book, "authorise", authorise("t3", MINOR))
    assert (refused.reason, refused.details) == ("guardian_limit", {"limit": 50, "spent": 30})
    book.order(keys.issuer, {"order": "cap", "card": MINOR, "paused": True})
    assert ask(keys, book, "authorise", authorise("t4", MINOR, 5)).reason == "card_not_linked"
    assert ask(keys, book, "inquiry", {"card": "04FFFFFF", "day": DAY}).reason == "unknown_card"


def test_the_same_txn_asked_twice_is_debited_once(keys: DevKeys, book: AccountBook):
    first = ask(keys, book, "authorise", authorise("t1"))
    again = ask(keys, book, "authorise", authorise("t1"))
    assert first.approved and again.approved and first.balance == again.balance == 70
    assert ask(keys, book, "authorise", authorise("t1", amount=99), machine=OTHER).approved is False, "funds: 70"
    assert book.get(ADULT).balance == 70  # type: ignore[union-attr]


def apply(book: AccountBook, seq: int, document: dict) -> None:
    rows = book.outcome_rows(MACHINE, document)
    book.store.store_many([Report(MACHINE, seq, "account", {"seq": seq}, rows)])


def outcome(txn: str, how: str, result: str, amount: int = 30, card: str = ADULT) -> dict:
    return {"machine": MACHINE, "txn": txn, "card": card, "amount": amount, "currency": "TWD", "day": DAY,
            "how": how, "outcome": result}  # fmt: skip


def test_outcomes_capture_offline_give_back_refunds_and_void_lost_answers(keys: DevKeys, book: AccountBook):
    assert ask(keys, book, "authorise", authorise("online")).approved  # 100 -> 70
    apply(book, 1, outcome("online", "online", "captured"))  # already debited: nothing more
    apply(book, 2, outcome("offline", "offline", "captured"))  # charged now: 40
    apply(book, 2, outcome("offline", "offline", "captured"))  # a redelivery: stored once, ignored
    assert book.get(ADULT).balance == 40  # type: ignore[union-attr]
    apply(book, 3, outcome("offline", "offline", "refunded"))  # the vend jammed: back to 70
    assert ask(keys, book, "authorise", authorise("lost")).approved  # approved, the answer lost: 40
    apply(book, 4, outcome("lost", "asking", "void"))  # the machine never vended on it: 70
    assert book.get(ADULT).balance == 70  # type: ignore[union-attr]
    assert ask(keys, book, "authorise", authorise("late-void")).approved is True  # 40
    apply(book, 5, outcome("never-seen", "asking", "void"))
    assert ask(keys, book, "authorise", authorise("never-seen")).approved is False, "a late request for a voided txn"
    apply(book, 6, outcome("big", "offline", "captured", amount=500))  # more than the account holds
    assert book.declined_debts() == [(MACHINE, "big", 500)]
    assert book.get(ADULT).balance == 40  # type: ignore[union-attr]


def test_hostile_requests_are_refused_before_anything_is_decided(keys: DevKeys):
    machine_key, other_key = keys.machine(MACHINE), keys.machine(OTHER)
    stranger = bytes(PrivateKey.generate().public_key)  # sealed to some other key than the issuer's
    _, wire, _ = compose_request(other_key, OTHER, "inquiry", {"card": ADULT, "day": DAY}, keys.seal_public)
    enrolled = lambda env: keys.enrolment.verify(MACHINE, env)  # noqa: E731 - the machine the topic names
    with pytest.raises(WireError, match="key"):  # another machine's request on this machine's topic
        read_request(wire.encode(), MACHINE, enrolled, keys.seal_private)
    _, wire, _ = compose_request(machine_key, MACHINE, "inquiry", {"card": ADULT, "day": DAY}, stranger)
    with pytest.raises(WireError, match="not sealed to this issuer"):
        read_request(wire.encode(), MACHINE, enrolled, keys.seal_private)
    with pytest.raises(WireError):
        read_request(b'{"protected": "x", "payload": "{}", "signature": "y"}', MACHINE, enrolled, keys.seal_private)
    deep = json.dumps({"a": json.loads("[" * 40 + "]" * 40)}).encode()
    with pytest.raises(WireError):
        read_request(deep, MACHINE, enrolled, keys.seal_private)


def test_an_answer_signed_by_anyone_but_the_issuer_is_refused(keys: DevKeys, book: AccountBook):
    _, wire, reply = compose_request(keys.machine(MACHINE), MACHINE, "inquiry", {"card": ADULT, "day": DAY},
                                     keys.seal_public)  # fmt: skip
    request = read_request(wire.encode(), MACHINE, lambda env: keys.enrolment.verify(MACHINE, env), keys.seal_private)
    forged = compose_answer(keys.vendor, request, IssuerAnswer(True, profile="staff", balance=10**6))
    issuer_only = lambda env: keys.trust.authorities.verify(env, parties=("issuer",))  # noqa: E731
    with pytest.raises(WireError, match="no say here"):
        answer_id(forged.encode(), MACHINE, issuer_only)
    genuine = compose_answer(keys.issuer, request, book.decide(request))
    with pytest.raises(WireError, match="for this machine"):
        answer_id(genuine.encode(), OTHER, issuer_only)
    _, sealed = answer_id(genuine.encode(), MACHINE, issuer_only)
    _, _, someone_else = compose_request(keys.machine(MACHINE), MACHINE, "inquiry", {}, keys.seal_public)
    with pytest.raises(WireError, match="not sealed to this request"):
        open_answer(sealed, someone_else)
    assert open_answer(sealed, reply).balance == 100
