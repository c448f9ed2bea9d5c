"""``vending issuer hotlist add|remove|publish``: the issuer's lost-card list, published to the broker."""

from __future__ import annotations

from pathlib import Path

from firmware.identity.keyset import HOTLIST, read_shared_key
from firmware.identity.signing import PublicKey, TrustStore
from firmware.reporting.hotlist import read
from simulator.servers.broker import EmbeddedBroker
from tests.simulator.cli.test_cli import vending


def test_add_remove_and_publish_send_a_sealed_list_a_machine_opens(tmp_path: Path):
    from datetime import UTC, datetime

    import paho.mqtt.subscribe as subscribe

    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    keys, db = tmp_path / "k", str(tmp_path / "issuer.db")
    with EmbeddedBroker() as broker:
        common = ["--keys", str(keys), "--db", db, "--broker", broker.url]
        added = vending("issuer", "hotlist", "add", "--card", "04a1b2c3", "--card", "04B2C3D4", *common)
        assert added.returncode == 0 and "hotlist version 1: 2 card(s) listed" in added.stdout, added.stderr
        removed = vending("issuer", "hotlist", "remove", "--card", "04A1B2C3", *common)
        assert removed.returncode == 0 and "hotlist version 2: 1 card(s) listed" in removed.stdout
        retained = subscribe.simple("issuer/v1/hotlist", hostname="127.0.0.1", port=broker.port, retained=True)
    assert b"04B2C3D4" not in retained.payload
    key = read_shared_key(keys, HOTLIST)
    assert key is not None
    issuer = TrustStore([PublicKey.load("issuer", keys / "issuer.pub")])
    document = read(retained.payload, key, issuer.verify, 0, datetime.now(UTC))
    assert document.version == 2 and len(document.entries) == 256, "one listed card, padded to the bucket"


def test_bad_cards_and_missing_keys_are_named(tmp_path: Path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    (tmp_path / "k" / "hotlist.key").unlink()
    common = ["--keys", str(tmp_path / "k"), "--db", str(tmp_path / "i.db"), "--broker", "mqtt://127.0.0.1:9"]
    bad = vending("issuer", "hotlist", "add", "--card", "zz", *common)
    assert bad.returncode == 2 and "--card 'zz': expected 4, 5, 7 or 10 bytes of hex" in bad.stderr
    missing = vending("issuer", "hotlist", "add", "--card", "04A1B2C3", *common)
    assert missing.returncode == 2 and "no hotlist.key" in missing.stderr


def test_a_broker_that_does_not_answer_is_named_and_the_kept_change_said_so(tmp_path: Path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    common = ["--keys", str(tmp_path / "k"), "--db", str(tmp_path / "i.db"), "--broker", "mqtt://127.0.0.1:9"]
    unsent = vending("issuer", "hotlist", "add", "--card", "04A1B2C3", *common)
    assert unsent.returncode == 2 and "--broker mqtt://127.0.0.1:9" in unsent.stderr, unsent.stderr
    assert "kept as version 1 (1 card(s))" in unsent.stderr and "vending issuer hotlist publish" in unsent.stderr


def test_a_change_under_another_issuer_s_keys_is_refused_before_it_is_kept_or_sent(tmp_path: Path):
    """Every machine would refuse a list signed by a key it does not trust, and the lost card would stay usable.

    The issuer's database keeps its lists, as its orders, under its first signer's key (signer.py).
    """
    import sqlite3

    for name in ("k", "other"):
        assert vending("keys", "dev-set", "--dir", str(tmp_path / name)).returncode == 0
    db = str(tmp_path / "issuer.db")
    with EmbeddedBroker() as broker:
        ours = vending("issuer", "hotlist", "add", "--card", "04A1B2C3", "--keys", str(tmp_path / "k"),
                       "--db", db, "--broker", broker.url)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        theirs = vending("issuer", "hotlist", "add", "--card", "04B2C3D4", "--keys", str(tmp_path / "other"),
                         "--db", db, "--broker", broker.url)  # fmt: skip
    assert theirs.returncode == 2 and "--keys: key" in theirs.stderr, theirs.stderr
    assert "is not the issuer's key this database keeps its orders under" in theirs.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT uid FROM hotlist_cards").fetchall() == [("04A1B2C3",)]
        assert conn.execute("SELECT MAX(version) FROM hotlist_versions").fetchone() == (1,), "no version recorded"
