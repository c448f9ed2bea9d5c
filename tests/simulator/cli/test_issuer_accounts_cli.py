"""``vending backend issuer open|topup|link|cap|accounts``: the issuer's orders on accounts, signed and checked."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from firmware.identity.signing import PublicKey, TrustStore
from tests.simulator.cli.test_cli import vending


def listed(db: str) -> list[dict]:
    lines = vending("backend", "issuer", "accounts", "--db", db, "--json").stdout.splitlines()
    return [json.loads(line) for line in lines]


def test_orders_change_the_account_and_each_is_kept_signed_by_the_issuer(tmp_path: Path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    key, db = str(tmp_path / "k" / "issuer.key"), str(tmp_path / "issuer.db")
    common = ["--key", key, "--db", db]
    opened = vending("backend", "issuer", "open", "--card", "04a1b2c3", "--profile", "student",
                     "--born", "2011-05-01", "--today", "2026-03-02", *common)  # fmt: skip
    assert opened.returncode == 0 and "04A1B2C3 student, balance NT$0, guardian none" in opened.stdout
    assert vending("backend", "issuer", "topup", "--card", "04A1B2C3", "--amount", "150", *common).returncode == 0
    assert vending("backend", "issuer", "link", "--card", "04A1B2C3", "--guardian", "mum-7", *common).returncode == 0
    capped = vending("backend", "issuer", "cap", "--card", "04A1B2C3", "--daily", "40", "--pause", *common)
    assert capped.returncode == 0 and "cap NT$40/day, paused" in capped.stdout
    (account,) = listed(db)
    assert account == {"uid": "04A1B2C3", "profile": "student", "born": "2011-05-01", "balance": 150,
                       "guardian": True, "daily_cap": 40, "paused": True}  # fmt: skip

    issuer = TrustStore([PublicKey.load("issuer", tmp_path / "k" / "issuer.pub")])
    with sqlite3.connect(db) as conn:
        kept = [json.loads(signed) for (signed,) in conn.execute("SELECT signed FROM account_orders ORDER BY id")]
    orders = [json.loads(issuer.verify(envelope).payload)["order"] for envelope in kept]
    assert orders == ["open", "topup", "link", "cap"]


def test_a_consent_that_cannot_be_one_is_refused(tmp_path: Path):
    """An empty reference was kept as a guardian (the account paid as linked, listed as "guardian none")."""
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    common = ["--key", str(tmp_path / "k" / "issuer.key"), "--db", str(tmp_path / "issuer.db")]
    for card, born in (("04A1B2C3", "2011-05-01"), ("04A1B2C6", "2011-06-01"), ("04A1B2C4", "1990-05-01")):
        profile = "staff" if born < "2000" else "student"
        assert vending("backend", "issuer", "open", "--card", card, "--profile", profile, "--born", born,
                       *common).returncode == 0  # fmt: skip
    for guardian, reason in (
        ("", "--guardian '': the guardian's account reference"),
        ("04a1b2c3", "the card's own account; nobody consents for themselves"),
        ("04A1B2C6", "--guardian '04A1B2C6': a minor's account (under 18); a guardian is an adult"),
    ):
        refused = vending("backend", "issuer", "link", "--card", "04A1B2C3", "--guardian", guardian, *common)
        assert refused.returncode == 2 and reason in refused.stderr, refused.stderr
    assert not next(a for a in listed(str(tmp_path / "issuer.db")) if a["uid"] == "04A1B2C3")["guardian"]
    with sqlite3.connect(tmp_path / "issuer.db") as conn:
        assert conn.execute("SELECT guardian FROM accounts WHERE uid = '04A1B2C3'").fetchone() == (None,)
    adult = vending("backend", "issuer", "link", "--card", "04A1B2C3", "--guardian", "04A1B2C4", *common)
    assert adult.returncode == 0 and "guardian linked" in adult.stdout


def test_a_card_linked_as_guardian_before_its_account_opened_cannot_open_as_a_minor_s(tmp_path: Path):
    """The minor-guardian rule held only at `link`: linked to a card with no account yet, which then opened
    as a 16-year-old's, a minor consented for another minor."""
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    common = ["--key", str(tmp_path / "k" / "issuer.key"), "--db", str(tmp_path / "issuer.db")]
    opening = ["backend", "issuer", "open", "--profile", "student", "--today", "2026-03-02", *common]
    assert vending(*opening, "--card", "04A1B2C3", "--born", "2011-05-01").returncode == 0
    linked = vending("backend", "issuer", "link", "--card", "04A1B2C3", "--guardian", "04a1b2c6", *common)
    assert linked.returncode == 0, linked.stderr  # a reference the issuer holds no account for: another issuer's
    minor = vending(*opening, "--card", "04A1B2C6", "--born", "2010-01-01")
    assert minor.returncode == 2, minor.stderr
    assert "--card 04A1B2C6: named as the guardian of 1 account(s), and a guardian is an adult" in minor.stderr
    assert [a["uid"] for a in listed(str(tmp_path / "issuer.db"))] == ["04A1B2C3"]
    adult = vending(*opening, "--card", "04A1B2C6", "--born", "1980-01-01")
    assert adult.returncode == 0, adult.stderr


def test_refused_orders_say_why_and_change_nothing(tmp_path: Path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    key, db = str(tmp_path / "k" / "issuer.key"), str(tmp_path / "issuer.db")
    common = ["--key", key, "--db", db]
    opening = ["backend", "issuer", "open", "--profile", "student", "--today", "2026-03-02", *common]
    assert vending(*opening, "--card", "04A1B2C3", "--born", "2011-05-01").returncode == 0
    cases = [
        ([*opening, "--card", "04A1B2C3", "--born", "2011-05-01"], "an account is open for this card already"),
        ([*opening, "--card", "04A1", "--born", "2011-05-01"], "--card '04A1': expected 4, 5, 7 or 10 bytes"),
        ([*opening, "--card", "04A1B2C4", "--born", "2015-05-01"], "--born 2015-05-01: an account is opened from age"),
        ([*opening, "--card", "04A1B2C4", "--born", "May 2011"], "--born: expected YYYY-MM-DD"),
        ([*opening, "--card", "04A1B2C4", "--born", "2030-01-01"], "--born 2030-01-01: after 2026-03-02, the day"),
        ([*opening, "--card", "04A1B2C4", "--born", "0201-05-01"], "--born 0201-05-01: 1824 years before 2026-03-02"),
        ([*opening, "--card", "04A1B2C4", "--born", "1905-03-01"], "--born 1905-03-01: 121 years before 2026-03-02"),
        (["backend", "issuer", "topup", "--card", "04A1B2C5", "--amount", "5", *common], "holds no account"),
        (["backend", "issuer", "topup", "--card", "04A1B2C3", "--amount", "0", *common], "--amount"),
        (["backend", "issuer", "cap", "--card", "04A1B2C3", *common], "cap needs --daily N"),
        (["backend", "issuer", "link", "--card", "04A1B2C3", *common], "exactly one of --guardian G or --unlink"),
        (["backend", "issuer"], "needs --broker, --key, --machines"),
    ]
    for argv, reason in cases:
        result = vending(*argv)
        assert result.returncode == 2 and reason in result.stdout + result.stderr, (argv, result.stderr)
    (account,) = listed(db)
    assert (account["uid"], account["balance"], account["guardian"]) == ("04A1B2C3", 0, False)


def test_an_order_under_another_party_s_key_is_refused_and_changes_nothing(tmp_path: Path):
    """Before, `--key keys/vendor.key` topped the account up and kept an order nobody could check."""
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    db = str(tmp_path / "issuer.db")
    opened = vending("backend", "issuer", "open", "--card", "04A1B2C3", "--profile", "staff", "--born", "1990-01-01",
                     "--key", str(tmp_path / "k" / "issuer.key"), "--db", db)  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT COUNT(*) FROM account_orders").fetchone()
    argv = ["backend", "issuer", "topup", "--card", "04A1B2C3", "--amount", "500", "--db", db]
    for foreign in ("vendor", "school"):
        named = vending(*argv, "--key", str(tmp_path / "k" / f"{foreign}.key"))  # its .pub beside it names it
        assert named.returncode == 2 and f"the {foreign}'s key ({foreign}.pub beside it" in named.stderr, named.stderr
        alone = tmp_path / foreign / "issuer.key"  # nothing beside it to tell: the database's own pin refuses it
        alone.parent.mkdir()
        alone.write_bytes((tmp_path / "k" / f"{foreign}.key").read_bytes())
        refused = vending(*argv, "--key", str(alone))
        assert refused.returncode == 2, refused.stdout
        assert "is not the issuer's key this database keeps its orders under" in refused.stderr
    (account,) = listed(db)
    assert account["balance"] == 0, "no money moved"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM account_orders").fetchone() == before, "no order kept"
