"""Every shipped scenario is an acceptance test: it must pass under the runner and the CLI."""

from __future__ import annotations

import pytest

from firmware.reporting.mqtt import BrokerAddress
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.schema import with_payment
from tests.conftest import SCENARIOS


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_passes(path, tmp_path, closing):
    """Each scenario runs as `vending run` does by default: with the embedded broker and both backends."""
    world = closing(ReportingWorld(tmp_path / "world").start())
    result = run_scenario(load_scenario(path), tmp_path / "machine", attach=world)
    assert result.expectations, "a shipped scenario must check something"
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


# with the purse on the card a refund after a power cut is owed until the card's next tap, so the
# balance between the cut and that tap differs: card-power-cycle-mid-vend tells that story instead
OWED_UNTIL_NEXT_TAP = {"power-cycle-mid-vend": "card-power-cycle-mid-vend"}
WALLET_SCENARIOS = [
    p
    for p in SCENARIOS
    if "payment: card" not in p.read_text()
    and "payment: account" not in p.read_text()
    and p.stem not in OWED_UNTIL_NEXT_TAP
]


def passes_with_payment(path, mode: str, tmp_path, closing) -> None:
    """The scenario as `vending run --payment MODE` plays it, with the embedded broker and the backends."""
    world = closing(ReportingWorld(tmp_path / "world").start())
    result = run_scenario(with_payment(load_scenario(path), mode), tmp_path / "machine", attach=world)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


@pytest.mark.parametrize("path", WALLET_SCENARIOS, ids=[p.stem for p in WALLET_SCENARIOS])
def test_shipped_scenario_passes_with_the_purse_on_the_card(path, tmp_path, closing):
    """The same story with every card a MIFARE purse the machine debits itself (`vending run --payment card`)."""
    passes_with_payment(path, "card", tmp_path, closing)
    assert set(OWED_UNTIL_NEXT_TAP.values()) <= {p.stem for p in SCENARIOS}


# an account's every debit adds an outcome report to the issuer's stream, so stories that count the
# outbox count one more per sale; and a broker outage is, for an account, the issuer out of reach:
# offline approvals within a limit, which account-offline-limit tells instead
COUNTS_THE_OUTBOX = {"broker-outage": "account-offline-limit", "crash-between-publish-and-ack": "normal-morning"}
ACCOUNT_SCENARIOS = [p for p in WALLET_SCENARIOS if p.stem not in COUNTS_THE_OUTBOX]


@pytest.mark.parametrize("path", ACCOUNT_SCENARIOS, ids=[p.stem for p in ACCOUNT_SCENARIOS])
def test_shipped_scenario_passes_with_accounts_at_the_issuer(path, tmp_path, closing):
    """The same story with every card an account at the run's issuer backend (`vending run --payment account`)."""
    passes_with_payment(path, "account", tmp_path, closing)
    assert set(COUNTS_THE_OUTBOX.values()) <= {p.stem for p in SCENARIOS}


def test_a_card_that_cannot_hold_a_purse_is_refused_naming_it(tmp_path):
    from firmware.errors import VendingError
    from tests.conftest import ROOT

    script = tmp_path / "guest.yaml"
    script.write_text(
        f"machine: {ROOT / 'configs/machines/demo.yaml'}\nstart: '2026-03-02T08:10:00+08:00'\n"
        "cards:\n  visitor: {uid: '04A1B2C3', profile: guest, balance: 100}\nsteps:\n  - tap: visitor\n"
    )
    with pytest.raises(VendingError, match="card 'visitor': a purse card is issued to one of student, staff"):
        with_payment(load_scenario(script), "card")


@pytest.mark.parametrize(
    ("stem", "mode", "step", "needs"),
    [
        ("card-purse-lunchtime-tear", "account", "tear", "the purse on the card"),
        ("card-purse-lunchtime-tear", "machine_wallet", "tear", "the purse on the card"),
        ("account-offline-limit", "card", "issuer", "issuer-held accounts"),
    ],
)
def test_a_step_that_acts_on_another_modes_money_is_refused_with_its_line_under_payment(stem, mode, step, needs):
    """`vending run --payment MODE` of a story whose steps need its own mode: exit 2 naming the step, not exit 70."""
    from firmware.errors import VendingError
    from tests.conftest import ROOT

    path = ROOT / "configs/scenarios" / f"{stem}.yaml"
    scenario = load_scenario(path)
    first = next(s for s in scenario.steps if s.kind == step)
    with pytest.raises(VendingError, match=rf"--payment {mode}: the `{step}` step at line {first.line} needs {needs}"):
        with_payment(scenario, mode)


def test_required_scenarios_are_shipped():
    names = {p.stem for p in SCENARIOS}
    assert {
        "normal-morning",
        "lunchtime-lockout",
        "insufficient-funds",
        "jam-and-refund",
        "sold-out",
        "selection-timeout",
        "door-open-mid-session",
        "unknown-card",
        "power-cycle-mid-vend",
        "broker-outage",
        "crash-between-publish-and-ack",
    } <= names


OUTAGES = [path for path in SCENARIOS if "broker: down" in path.read_text()]


@pytest.mark.parametrize("broker", ["embedded", "mosquitto", "url"])
@pytest.mark.parametrize("path", OUTAGES, ids=[p.stem for p in OUTAGES])
def test_outages_behave_alike_on_every_kind_of_broker(path, broker, tmp_path, closing):
    """`broker: down` cuts the machine's link through the fault proxy, so a URL broker nobody can stop
    and the run's own brokers all see the same outage, and the outbox drains after `broker: up`."""
    from simulator.servers.mosquitto import MosquittoProcess
    from tests.support.reporting import require_mosquitto

    address = None
    if broker != "embedded":
        require_mosquitto()
    if broker == "url":  # someone else's broker: the run may not stop it
        someone_elses = closing(MosquittoProcess(tmp_path / "theirs").start())
        address = BrokerAddress("127.0.0.1", someone_elses.port)
    world = ReportingWorld(tmp_path / "world", broker=broker, broker_address=address, guest_id="t" if address else None)
    closing(world.start())
    result = run_scenario(load_scenario(path), tmp_path / "machine", attach=world)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]
    assert world.link is not None and world.link.cut >= 1, "the outage went through the proxy"
