"""The issuer's counter checks: every purse step settled once, and no money leaving a card unsettled."""

from __future__ import annotations

from pathlib import Path

from firmware.cards.purse import Sam, step_mac
from simulator.backends.card_counters import decide_unresolved, incidents
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.purses import simulation_card_master
from simulator.scenarios.reporting_world import ReportingWorld
from tests.conftest import ROOT

SAM = Sam(bytes(range(32)))
UID = "04A1B2C3"


def step(counter: int, amount: int, balance: int, machine: str = "M1", sam: Sam = SAM) -> dict[str, object]:
    mac = step_mac(sam, bytes.fromhex(UID), counter, amount, balance)
    return {"uid": UID, "counter": counter, "amount": amount, "balance": balance, "mac": mac, "machine": machine}


def test_contiguous_steps_and_a_top_up_between_them_are_no_incident():
    steps = [step(1, 25, 75), step(2, 20, 55, "M2"), step(4, 25, 230)]  # #3: a store's top-up of 200
    assert incidents(steps, SAM) == []


def test_a_repeat_a_debit_nobody_settled_an_altered_step_and_a_forged_mac_are_each_named():
    found = incidents(
        [
            step(1, 25, 75),
            step(1, 30, 70, "M2"),  # the same counter twice: a cloned card, or a replay
            step(4, 10, 20),  # 75 - 10 = 65, the card shows 20: NT$45 left in #2..#3, settled by nobody
            step(5, 5, 10),  # 20 - 5 = 15, not 10
            step(6, 5, 5, sam=Sam(b"\x07" * 32)),  # a step no SAM of the issuer made
        ],
        SAM,
    )
    assert [(i.kind, i.counter) for i in found] == [("mac", 6), ("repeat", 1), ("gap", 4), ("altered", 5)]
    assert "NT$45 left in unsettled #2..#3" in found[2].detail


def test_a_card_mode_term_reaches_the_issuer_step_by_step_without_incident(tmp_path: Path, closing):
    """The lunchtime-tear scenario, then a sale in the next settlement period: its first close sends the steps."""
    source = (ROOT / "configs/scenarios/card-purse-lunchtime-tear.yaml").read_text()
    script = tmp_path / "term.yaml"
    machine = ROOT / "configs/machines/demo.yaml"
    next_period = "  - wait: 600h\n  - select: A1\n  - tap: amy\n  - wait: 24h\n"
    script.write_text(source.replace("../machines/demo.yaml", str(machine)) + next_period)
    world = closing(ReportingWorld(tmp_path / "world").start())
    result = run_scenario(load_scenario(script), tmp_path / "machine", attach=world)
    assert result.passed
    assert world.issuer is not None
    rows = world.issuer.store.execute("SELECT counter, amount, balance FROM card_steps ORDER BY counter")
    # a sale; #2 voided by the next tap (nothing moved); a sale; a debit the card showed made and its
    # refund; #6 the store's top-up (settled by the store); the jam's debit and refund
    assert [tuple(row) for row in rows] == [
        (1, 25, 75),
        (3, 25, 50),
        (4, 20, 30),
        (5, -20, 50),
        (7, 25, 225),
        (8, -25, 250),
    ]
    sam = simulation_card_master(tmp_path / "machine")  # the issuer's card master, as the machine's SAM holds it
    assert world.issuer.counter_incidents(sam) == [], "every step MACed by the SAM, no repeat, no unsettled debit"


def test_a_sealed_period_document_with_a_malformed_step_is_refused_before_anything_is_stored(tmp_path: Path):
    """The inside of the seal is checked against the contract too: an enrolled machine cannot store garbage."""
    from zoneinfo import ZoneInfo

    import pytest

    from firmware.reporting.reporter import MqttReporter
    from simulator.backends.issuer import IssuerBackend
    from simulator.dev_keys import DevKeys
    from simulator.privacy.request_traffic import NOWHERE

    keys = DevKeys(tmp_path / "keys")
    identity = keys.machine("M-1")
    issuer = IssuerBackend(NOWHERE, tmp_path / "issuer.db", keys.seal_private, keys.issuer, keys.enrolment)
    reporter = MqttReporter(machine="M-1", zone=ZoneInfo("Asia/Taipei"), currency="TWD", stock=dict,
                            daily_totals=lambda day: [], low_stock=2)  # fmt: skip
    good = step(1, 25, 75)
    document = {"machine": "M-1", "week": "2026-W09", "days": ["2026-03-02"], "currency": "TWD", "cards": []}
    for bad in ({**good, "counter": "1"}, {**good, "mac": "not a mac"}, {k: v for k, v in good.items() if k != "mac"}):
        del bad["machine"]
        sealed = {**document, "steps": [bad]}
        message = reporter._sealed("settlement", sealed, identity, keys.seal_public, day="2026-03-30")
        with pytest.raises(ValueError, match="settlement-document does not match the contract at steps"):
            issuer.report("M-1", "settlement", {**message.payload, "seq": 1})
    assert [tuple(row) for row in issuer.store.execute("SELECT COUNT(*) FROM card_steps")] == [(0,)]
    fine = {k: v for k, v in good.items() if k != "machine"}
    sealed = {**document, "steps": [fine]}
    message = reporter._sealed("settlement", sealed, identity, keys.seal_public, day="2026-03-30")
    assert issuer.report("M-1", "settlement", {**message.payload, "seq": 1}) is not None


def test_what_a_verdict_leaves_a_card_owed() -> None:
    """A debit made with nothing vended, and a refund's try never made, are owed; the rest are not."""
    left = [
        {"uid": UID, "machine": "M1", "txn": name, "counter": 1, "amount": amount, "before": 100}
        for name, amount in (("debit", 25), ("refund", -25))
    ]
    cases = {  # the balance before the card's next step -> what each is owed
        75: {"debit": 25, "refund": 0},  # the debit was made; the refund try does not fit: unknown
        125: {"debit": 0, "refund": 0},  # the refund was made: the card has it
        100: {"debit": 0, "refund": 25},  # neither was made: the refund is still owed
        90: {"debit": 0, "refund": 0},  # neither fits (a top-up between?): unknown, left for review
    }
    for before_next, owed in cases.items():
        following = {"uid": UID, "counter": 2, "amount": 10, "balance": before_next - 10}
        assert {d.txn: d.owed_to_card for d in decide_unresolved(left, [following])} == owed, before_next
