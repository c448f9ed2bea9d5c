"""``vending issuer verdict``: a reviewer decides a purse step the card's counters cannot, once.

The issuer's file of the audit's tests: AMY's left debit the counters found made (NT$25 listed by the
backend); BEN's with no step after it (a store's top-up took the counter), ``unknown`` for good.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.subscribe as subscribe

from firmware.domain import Credit
from firmware.identity.keyset import HOTLIST, read_shared_key
from firmware.identity.pseudonym import hotlist_name
from firmware.identity.signing import PublicKey, TrustStore
from firmware.reporting import credits
from simulator.backends.store import SqliteReportStore
from simulator.dev_keys import DevKeys
from simulator.servers.broker import EmbeddedBroker
from tests.simulator.cli.test_cli import vending
from tests.simulator.cli.test_issuer_purses_cli import AMY, BEN, LEAVE, issuer_db

LEFT_BY_BEN = ("--machine", "M-1", "--txn", "M-1-00000002")


def left(db: Path) -> dict[str, dict]:
    audit = vending("backend", "issuer", "purses", "--db", str(db), "--json").stdout.splitlines()
    return {line["left"]["uid"]: line["left"] for line in map(json.loads, audit) if "left" in line}


def test_a_reviewed_verdict_lists_the_card_s_money_once_and_publishes_the_list(tmp_path: Path) -> None:
    db, keys = issuer_db(tmp_path)
    reason = "card log read at the service desk: debit at counter 5 on the card"
    with EmbeddedBroker() as broker:
        common = ["--keys", str(keys), "--db", str(db), "--broker", broker.url]
        decided = vending("issuer", "verdict", *LEFT_BY_BEN, "--made", "--reason", reason, *common)
        assert decided.returncode == 0, decided.stderr
        assert "M-1 M-1-00000002: made (reviewed), NT$25 listed for the card" in decided.stdout
        retained = subscribe.simple(credits.TOPIC, hostname="127.0.0.1", port=broker.port, retained=True)

        again = vending("issuer", "verdict", *LEFT_BY_BEN, "--not-made", "--reason", "second thoughts", *common)
        assert again.returncode == 2 and "decided already (made, NT$25 listed for the card)" in again.stderr

    key = read_shared_key(keys, HOTLIST)
    assert key is not None
    issuer = TrustStore([PublicKey.load("issuer", keys / "issuer.pub")])
    listed = credits.read(retained.payload, key, issuer.verify, 0, datetime.now(UTC)).cards
    assert listed[hotlist_name(key, BEN)] == (Credit(1, 25),), "what a machine reads: BEN's NT$25, for his next tap"
    assert listed[hotlist_name(key, AMY)] == (Credit(1, 25),), "the backend's own listing still there"
    assert BEN.encode() not in retained.payload and AMY.encode() not in retained.payload

    audit = left(db)
    assert (audit[BEN]["verdict"], audit[BEN]["listed"], audit[BEN]["reviewed"]) == ("made", 25, reason)
    store = SqliteReportStore(db, "issuer")
    ((signed,),) = store.execute("SELECT signed FROM card_unresolved_reviewed")
    store.close()
    checked = issuer.verify(json.loads(signed), ["issuer"])  # kept signed by the issuer's key, as account orders are
    order = json.loads(checked.payload)
    assert order == {"order": "verdict", "machine": "M-1", "txn": "M-1-00000002", "verdict": "made", "owed": 25,
                     "reason": reason, "at": order["at"]}  # fmt: skip
    assert (audit[AMY]["verdict"], audit[AMY]["reviewed"]) == ("made", None), "the counters' verdict, unreviewed"


def test_a_step_not_made_is_recorded_with_nothing_owed(tmp_path: Path) -> None:
    db, keys = issuer_db(tmp_path)
    with EmbeddedBroker() as broker:
        decided = vending("issuer", "verdict", *LEFT_BY_BEN, "--not-made", "--reason", "no such step in the card's log",
                          "--keys", str(keys), "--db", str(db), "--broker", broker.url)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert "not_made (reviewed), nothing owed to the card" in decided.stdout
    assert (left(db)[BEN]["verdict"], left(db)[BEN]["listed"]) == ("not_made", 0)


def test_refused_verdicts_name_the_step_and_change_nothing(tmp_path: Path) -> None:
    db, keys = issuer_db(tmp_path)
    store = SqliteReportStore(db, "issuer")  # a step the counters decide (BEN's settled counter 1 follows it) ...
    store.execute(LEAVE, ("M-2", "M-2-00000001", BEN, 0, 25, 125, "2026-03-01"))  # ... not acted on yet
    store.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    common = ["--keys", str(keys), "--db", str(db), "--broker", "mqtt://127.0.0.1:9"]
    cases = {
        "no such step left to the issuer": ["--machine", "M-1", "--txn", "M-1-00000099", "--made", "--reason", "r"],
        "the card's counters decide it (made)": ["--machine", "M-2", "--txn", "M-2-00000001", "--not-made",
                                                 "--reason", "r"],
        "decided already (made, NT$25 listed": ["--machine", "M-1", "--txn", "M-1-00000001", "--made", "--reason", "r"],
        "--reason is empty": [*LEFT_BY_BEN, "--made", "--reason", "  "],
    }  # fmt: skip
    for expected, args in cases.items():
        refused = vending("issuer", "verdict", *args, *common)
        assert refused.returncode == 2 and expected in refused.stderr, (expected, refused.stderr)
        assert f"--machine {args[1]} --txn {args[3]}" in refused.stderr, "the step named"
    missing = vending("issuer", "verdict", *LEFT_BY_BEN, "--made", "--reason", "r", "--keys", str(keys),
                      "--db", str(tmp_path / "none.db"), "--broker", "mqtt://127.0.0.1:9")  # fmt: skip
    assert missing.returncode == 2 and "none.db: no such file" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    stranger = DevKeys(tmp_path / "another-issuer").directory  # an issuer key that is not this database's
    foreign = vending("issuer", "verdict", *LEFT_BY_BEN, "--made", "--reason", "r", "--keys", str(stranger),
                      "--db", str(db), "--broker", "mqtt://127.0.0.1:9")  # fmt: skip
    assert foreign.returncode == 2 and "is not the issuer's key this database keeps its orders under" in foreign.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "nothing recorded"
    assert left(db)[BEN]["verdict"] == "unknown"
