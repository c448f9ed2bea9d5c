"""The backends' SQLite schemas: what each party's database holds (docs/backends.md shows them)."""

from __future__ import annotations

from simulator.backends.views import view_sql

# the table where a party's database keeps the key id its orders are signed with (simulator/backends/signer.py)
SIGNER_TABLES = {"issuer": "issuer_signer", "school": "school_signer"}


def signer_schema(party: str) -> str:
    """``party``'s signer table: the key id every order on its database is signed with, its first signer's."""
    return (
        f"-- the key id every order here is signed with: the first signer's, the {party}'s "
        "(simulator/backends/signer.py)\n"
        f"CREATE TABLE IF NOT EXISTS {SIGNER_TABLES[party]} (kid TEXT NOT NULL);\n"
    )


# the issuer's: its accounts' orders, and the hotlist's registry, which keeps its versions on the same file
SIGNER_SCHEMA = signer_schema("issuer")

RECEIVED_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    machine TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    digest TEXT NOT NULL DEFAULT '', signature TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (machine, seq)
);
CREATE TABLE IF NOT EXISTS acked (machine TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (signature TEXT PRIMARY KEY, manifest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, machine TEXT, topic TEXT NOT NULL,
    reason TEXT NOT NULL, digest TEXT NOT NULL
);
"""


VENDOR_SCHEMA = (
    RECEIVED_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS machines (
    machine TEXT PRIMARY KEY, state TEXT NOT NULL, last_heartbeat TEXT, outbox INTEGER
);
"""
    + view_sql("sqlite")  # sales, denials, alerts, summaries: generated from firmware/reporting/reports.py
)

ISSUER_SCHEMA = (
    RECEIVED_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS settlements (
    machine TEXT NOT NULL, day TEXT NOT NULL, uid TEXT NOT NULL, amount INTEGER, count INTEGER,
    PRIMARY KEY (machine, day, uid)
);
CREATE TABLE IF NOT EXISTS settlement_weeks (
    machine TEXT NOT NULL, week TEXT NOT NULL, days TEXT NOT NULL, uid TEXT NOT NULL, amount INTEGER NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (machine, week, uid)
);
CREATE TABLE IF NOT EXISTS settlement_days (
    machine TEXT NOT NULL, day TEXT NOT NULL, amount INTEGER NOT NULL, count INTEGER NOT NULL,
    cards INTEGER NOT NULL, refunded INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (machine, day)
);
CREATE TABLE IF NOT EXISTS card_steps (
    uid TEXT NOT NULL, counter INTEGER NOT NULL, machine TEXT NOT NULL, amount INTEGER NOT NULL,
    balance INTEGER NOT NULL, mac TEXT NOT NULL, week TEXT NOT NULL, PRIMARY KEY (uid, counter, machine)
);
CREATE TABLE IF NOT EXISTS card_unresolved (
    machine TEXT NOT NULL, txn TEXT NOT NULL, uid TEXT NOT NULL, counter INTEGER NOT NULL, amount INTEGER NOT NULL,
    before INTEGER NOT NULL, day TEXT NOT NULL, PRIMARY KEY (machine, txn)
);
-- each unresolved step once decided, with what the card was owed for it (listed as a credit): never purged,
-- so a verdict is acted on once even after its credit, given, has gone with its day
CREATE TABLE IF NOT EXISTS card_unresolved_decided (
    machine TEXT NOT NULL, txn TEXT NOT NULL, verdict TEXT NOT NULL, owed INTEGER NOT NULL, PRIMARY KEY (machine, txn)
);
-- the verdicts a reviewer gave where the counters could not (`vending issuer verdict`): why and when, and
-- the whole order signed by the issuer's key, as its account orders are
CREATE TABLE IF NOT EXISTS card_unresolved_reviewed (
    machine TEXT NOT NULL, txn TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, signed TEXT NOT NULL,
    PRIMARY KEY (machine, txn)
);
-- refunds owed to purse cards, numbered per card, listed for every machine until a card has them
-- (simulator/backends/credits.py); and the last version of that list published, which only rises
CREATE TABLE IF NOT EXISTS pending_credits (
    uid TEXT NOT NULL, seq INTEGER NOT NULL, amount INTEGER NOT NULL, machine TEXT NOT NULL, txn TEXT NOT NULL,
    day TEXT NOT NULL, given INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (uid, seq), UNIQUE (machine, txn)
);
-- the card day of the purchase a credit gives back, where it names one: listed with the credit, so the
-- machine that gives it that day gives back the day's allowance too
CREATE TABLE IF NOT EXISTS credit_purchases (
    machine TEXT NOT NULL, txn TEXT NOT NULL, bought TEXT NOT NULL, PRIMARY KEY (machine, txn)
);
CREATE TABLE IF NOT EXISTS credits_published (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    uid TEXT PRIMARY KEY, profile TEXT NOT NULL, born TEXT NOT NULL, balance INTEGER NOT NULL,
    guardian TEXT, daily_cap INTEGER, paused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS account_debits (
    machine TEXT NOT NULL, txn TEXT NOT NULL, uid TEXT NOT NULL, amount INTEGER NOT NULL, day TEXT NOT NULL,
    how TEXT NOT NULL, state TEXT NOT NULL, applied INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (machine, txn)
);
CREATE TABLE IF NOT EXISTS account_orders (id INTEGER PRIMARY KEY AUTOINCREMENT, signed TEXT NOT NULL);
"""
    + SIGNER_SCHEMA
)

SCHOOL_SCHEMA = (
    RECEIVED_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS guardian_alerts (
    machine TEXT NOT NULL, seq INTEGER NOT NULL, card TEXT NOT NULL, alert TEXT NOT NULL, day TEXT NOT NULL,
    facts TEXT NOT NULL, PRIMARY KEY (machine, seq)
);
"""
)

# each party's database: the tables its store makes, by the party whose file it is (firmware/journal/owner.py)
PARTY_SCHEMAS = {"vendor": VENDOR_SCHEMA, "issuer": ISSUER_SCHEMA, "school": SCHOOL_SCHEMA}
