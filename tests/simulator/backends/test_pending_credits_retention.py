"""The issuer's pending credits: listed with the purchase's day where a credit names one, and forgotten
by retention once a card has been given them, never while one is still owed to a card."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from firmware.domain import Credit
from firmware.identity.pseudonym import hotlist_name
from firmware.identity.signing import Identity, TrustStore
from firmware.reporting import credits as credits_list
from firmware.reporting.pushed import seal_push
from firmware.reporting.wire import WireError
from simulator.backends.credits import PendingCredits
from simulator.backends.store import SqliteReportStore

AMY, BEN = "04A1B2C3", "04B2C3D4"


def test_given_credits_go_with_their_days_and_owed_ones_stay(tmp_path: Path) -> None:
    store = SqliteReportStore(tmp_path / "issuer.db", "issuer")
    try:
        credits = PendingCredits(store, Identity.generate("issuer"), bytes(32))
        for uid, txn in ((AMY, "M-1-0000000000000001"), (BEN, "M-1-0000000000000002")):
            document = {"machine": "M-1", "txn": txn, "card": uid, "amount": 25, "day": "2026-03-02"}
            for sql, params in credits.rows("credit", document | {"bought": "2026-03-02"}):
                store.execute(sql, params)
        store.execute("UPDATE pending_credits SET given = 1 WHERE uid = ?", (AMY,))
        store.expire(30, today=date(2026, 6, 1))
        left = store.execute("SELECT uid, given FROM pending_credits")
        assert left == [(BEN, 0)], "the given one is forgotten with its day; the owed one stays"
        assert credits.pending() == 25
        assert store.execute("SELECT txn FROM credit_purchases") == [("M-1-0000000000000002",)], "its day with it"
    finally:
        store.close()


def test_the_list_names_the_purchase_day_of_a_credit_that_gives_one_back_and_a_machine_reads_both_kinds(
    tmp_path: Path,
) -> None:
    issuer, key = Identity.generate("issuer"), bytes(range(32))
    store = SqliteReportStore(tmp_path / "issuer.db", "issuer")
    try:
        pending = PendingCredits(store, issuer, key)
        refunded = {"machine": "M-1", "txn": "M-1-01", "card": AMY, "amount": 25, "day": "2026-03-03"}
        for sql, params in [*pending.rows("credit", refunded | {"bought": "2026-03-02"}),
                            *pending.rows("credit", refunded | {"txn": "M-1-02", "amount": 10})]:  # fmt: skip
            store.execute(sql, params)
        message = pending.message(datetime(2026, 3, 3, 9, tzinfo=UTC))
    finally:
        store.close()
    assert message is not None
    document = credits_list.read(message[1].encode(), key, TrustStore([issuer.public]).verify, 0,
                                 datetime(2026, 3, 3, 10, tzinfo=UTC))  # fmt: skip
    assert document.cards == {hotlist_name(key, AMY): (Credit(1, 25, "2026-03-02"), Credit(2, 10))}


@pytest.mark.parametrize(
    "entry",
    [[1, 25, "yesterday"], [1, 25, 20260302], [1, 25, "2026-03-02", 1], [1], [0, 25], [1, 10_001, "2026-03-02"]],
)
def test_a_list_with_a_malformed_credit_is_refused_naming_the_card(entry: list[object]) -> None:
    issuer, key = Identity.generate("issuer"), bytes(range(32))
    now = datetime(2026, 3, 3, 9, tzinfo=UTC)
    head = {"kind": "credits", "version": 7, "issued": now.isoformat(), "expires": now.replace(day=4).isoformat()}
    raw = seal_push(issuer, key, credits_list.LABEL, head | {"cards": {"ab" * 16: [entry]}})
    with pytest.raises(WireError, match=r"cards\.abababab…: each credit is \[seq 1\.\.32767, amount 1\.\.10000\]"):
        credits_list.read(raw.encode(), key, TrustStore([issuer.public]).verify, 0, now)
    assert json.loads(raw)["sealed"], "sealed as the issuer seals it"


def test_a_list_naming_a_seq_twice_is_refused(tmp_path: Path) -> None:
    issuer, key = Identity.generate("issuer"), bytes(range(32))
    now = datetime(2026, 3, 3, 9, tzinfo=UTC)
    head = {"kind": "credits", "version": 7, "issued": now.isoformat(), "expires": now.replace(day=4).isoformat()}
    twice = [[1, 25], [1, 25, "2026-03-02"]]  # before, sorting them raised a TypeError (None against a day)
    raw = seal_push(issuer, key, credits_list.LABEL, head | {"cards": {"ab" * 16: twice}})
    with pytest.raises(WireError, match=r"cards\.abababab…: a credit's seq is listed twice"):
        credits_list.read(raw.encode(), key, TrustStore([issuer.public]).verify, 0, now)
