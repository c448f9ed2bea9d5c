"""``vending backend issuer purses``: an auditor's view of purse cards from the issuer's database, read only.

Counter incidents across machines (a forged MAC only with the card master key), and each step a machine
left unresolved with its verdict and what the issuer listed for the card once it acted on it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from firmware.cards.purse import Sam, step_mac
from firmware.identity.keyset import read_card_master
from firmware.reporting.mqtt import BrokerAddress
from simulator.backends.issuer import IssuerBackend
from simulator.backends.store import SqliteReportStore
from simulator.dev_keys import DevKeys
from tests.simulator.cli.test_cli import vending

AMY, BEN = "04A1B2C3", "04B2C3D4"
SETTLE = "INSERT INTO card_steps (uid, counter, machine, amount, balance, mac, week) VALUES (?, ?, ?, ?, ?, ?, ?)"
LEAVE = "INSERT INTO card_unresolved (machine, txn, uid, counter, amount, before, day) VALUES (?, ?, ?, ?, ?, ?, ?)"


def issuer_db(tmp_path: Path) -> tuple[Path, Path]:
    """An issuer's file: AMY's debit left and found made; BEN's left with nothing after it; a forged MAC."""
    keys = DevKeys(tmp_path / "keys")
    sam = Sam(read_card_master(keys.directory))
    db = tmp_path / "issuer.db"
    issuer = IssuerBackend(BrokerAddress.parse("mqtt://127.0.0.1:9"), db, keys.seal_private, keys.issuer,
                           keys.enrolment)  # fmt: skip
    try:
        for uid, counter, amount, balance in ((AMY, 2, 10, 65), (BEN, 1, 20, 80)):
            mac = step_mac(sam, bytes.fromhex(uid), counter, amount, balance)
            issuer.store.execute(SETTLE, (uid, counter, "M-OTHER", amount, balance, mac, "2026-W09"))
        issuer.store.execute(SETTLE, (BEN, 2, "M-OTHER", 10, 70, "00" * 8, "2026-W09"))  # no SAM made this MAC
        issuer.store.execute(LEAVE, ("M-1", "M-1-00000001", AMY, 1, 25, 100, "2026-03-02"))  # 100 - 25 = 65 + 10
        issuer.store.execute(LEAVE, ("M-1", "M-1-00000002", BEN, 5, 25, 70, "2026-03-03"))  # counter 6: not settled
        assert issuer.refund_unresolved() == 1, "AMY's NT$25 listed"
    finally:
        issuer.store.close()
    return db, keys.directory


def test_the_audit_shows_incidents_verdicts_and_what_was_listed(tmp_path: Path) -> None:
    db, keys = issuer_db(tmp_path)
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    plain = vending("backend", "issuer", "purses", "--db", str(db))
    assert plain.returncode == 0, plain.stderr
    assert "0 counter incident(s), MACs not checked (no --keys); 2 left step(s), NT$25 listed for cards" in plain.stdout
    assert "made" in plain.stdout and "unknown" in plain.stdout and "not yet" in plain.stdout

    lines = [json.loads(line) for line in vending("backend", "issuer", "purses", "--db", str(db), "--keys", str(keys),
                                                  "--json").stdout.splitlines()]  # fmt: skip
    incidents = [line["incident"] for line in lines if "incident" in line]
    assert [(i["uid"], i["counter"], i["kind"]) for i in incidents] == [(BEN, 2, "mac")], "the forged MAC, named"
    left = {line["left"]["uid"]: line["left"] for line in lines if "left" in line}
    assert (left[AMY]["verdict"], left[AMY]["listed"], left[AMY]["day"]) == ("made", 25, "2026-03-02")
    assert (left[BEN]["verdict"], left[BEN]["listed"]) == ("unknown", None)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "the audit changed nothing"


def test_a_missing_file_another_party_s_file_and_bad_keys_are_named(tmp_path: Path) -> None:
    missing = vending("backend", "issuer", "purses", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and f"--db {tmp_path / 'nope.db'}: no such file" in missing.stderr

    vendor_db = tmp_path / "vendor.db"
    SqliteReportStore(vendor_db).close()  # the vendor's file, stamped as its
    before = hashlib.sha256(vendor_db.read_bytes()).hexdigest()
    foreign = vending("backend", "issuer", "purses", "--db", str(vendor_db))
    assert foreign.returncode == 2 and f"{vendor_db}: the vendor's database" in foreign.stderr, foreign.stderr
    assert hashlib.sha256(vendor_db.read_bytes()).hexdigest() == before

    db, _ = issuer_db(tmp_path / "issuer")
    no_keys = vending("backend", "issuer", "purses", "--db", str(db), "--keys", str(tmp_path))
    assert no_keys.returncode == 2 and "--keys: " in no_keys.stderr and "card-master.key" in no_keys.stderr
