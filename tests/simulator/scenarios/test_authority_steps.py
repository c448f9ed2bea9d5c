"""The authorities' steps (`refund`, `hotlist`, `controls`) as a scenario author meets them.

A story the machine cannot play as written (a refund with no sale before it, or while a customer is
at the machine, which takes commands only between sessions) is named by its line and changes nothing
(`vending run` exits 2); a refund the machine refuses fails the run at its line (exit 1). What an
authority sends while the machine's link is cut (`broker: down`) reaches the machine when the link is
back, as the broker's retained list or its queued command would: `broker: up` ends once it has.
Before, each of these ended in an internal error after half a minute of waiting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from firmware.errors import InputError
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.scenarios.runner import ScenarioResult
from tests.conftest import DEMO_MACHINE, VENDING
from tests.support.reporting import require_mosquitto

HEAD = f"""machine: {DEMO_MACHINE}
start: "2026-03-02T09:40:00+08:00"
cards:
  amy: {{uid: "04A1B2C3D4E5F6", profile: student, balance: 200}}
steps:
"""
SALE = "  - select: A1\n  - tap: amy\n  - expect: {outcome: vended, balance: 175}\n"


def story(tmp_path: Path, steps: str, head: str = HEAD) -> Path:
    path = tmp_path / "story.yaml"
    path.write_text(head + steps)
    return path


def play(tmp_path: Path, path: Path, closing, broker: str = "embedded") -> ScenarioResult:
    world = closing(ReportingWorld(tmp_path / "world", broker).start())
    return run_scenario(load_scenario(path), tmp_path / "machine", attach=world)


def brokers() -> list[str]:
    return ["embedded", "mosquitto"]


def test_a_refund_with_no_sale_before_it_is_named_by_its_line(tmp_path, closing):
    path = story(tmp_path, "  - refund: {amount: 25}\n")
    with pytest.raises(InputError) as raised:
        play(tmp_path, path, closing)
    reason = "needs a sale on this machine before it (it refunds the last one)"
    assert str(raised.value) == f"{path}:6: steps.0.refund: {reason}"


def test_a_refund_while_a_customer_is_at_the_machine_is_named_with_the_way_out(tmp_path, closing):
    path = story(tmp_path, SALE + "  - tap: amy\n  - refund: {amount: 25}\n")  # the card is read: a session
    with pytest.raises(InputError, match=r"story\.yaml:10: steps\.4\.refund: the machine is serving a customer "
                                         r"\(state awaiting_selection\).*`cancel: true`"):  # fmt: skip
        play(tmp_path, path, closing)


def test_the_same_refund_after_the_session_ends_is_taken(tmp_path, closing):
    path = story(tmp_path, SALE + "  - tap: amy\n  - cancel: true\n  - refund: {amount: 25}\n  - tap: amy\n"
                 "  - expect: {balance: 200}\n")  # fmt: skip
    result = play(tmp_path, path, closing)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


def test_a_refund_the_machine_refuses_fails_the_run_at_its_line_and_pays_nothing(tmp_path, closing):
    path = story(tmp_path, SALE + "  - refund: {amount: 30}\n  - tap: amy\n  - expect: {balance: 175}\n")
    result = play(tmp_path, path, closing)
    assert [(f.line, f.key, f.expected, f.actual) for f in result.failures] == [
        (9, "refund", "accepted", "refused: amount 30: more than the sale's price (25)")
    ]
    assert [e.key for e in result.expectations if e.ok] == ["outcome", "balance", "balance"], "nothing was paid"


@pytest.mark.parametrize("broker", brokers())
def test_a_refund_sent_while_the_link_is_cut_is_paid_once_the_link_is_back(tmp_path, closing, broker):
    if broker == "mosquitto":
        require_mosquitto()
    path = story(tmp_path, SALE + "  - broker: down\n  - refund: {amount: 25}\n  - tap: amy\n"
                 "  - expect: {balance: 175}\n  - cancel: true\n  - broker: up\n  - tap: amy\n"
                 "  - expect: {balance: 200}\n")  # fmt: skip
    result = play(tmp_path, path, closing, broker)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]
    assert len(result.expectations) == 4


def test_a_refund_that_reaches_the_machine_mid_session_is_named_by_its_line(tmp_path, closing):
    path = story(tmp_path, SALE + "  - broker: down\n  - refund: {amount: 25}\n  - tap: amy\n  - broker: up\n")
    with pytest.raises(InputError, match=r"story\.yaml:10: steps\.4\.refund: reached the machine at `broker: up` "
                                         r"while it was serving a customer \(state awaiting_selection\)"):  # fmt: skip
        play(tmp_path, path, closing)


def test_a_story_that_ends_with_the_link_cut_says_what_never_reached_the_machine(tmp_path, closing, caplog):
    path = story(tmp_path, SALE + "  - broker: down\n  - refund: {amount: 25}\n")
    world = closing(ReportingWorld(tmp_path / "world").start())
    with caplog.at_level("WARNING", logger="simulator.scenarios.reporting_world"):
        result = run_scenario(load_scenario(path), tmp_path / "machine", attach=world)
    assert result.passed
    assert "1 authority message(s) never reached the machines: no `broker: up`" in caplog.text


@pytest.mark.parametrize("broker", brokers())
def test_a_card_listed_lost_while_the_link_is_cut_is_refused_once_the_link_is_back(tmp_path, closing, broker):
    if broker == "mosquitto":
        require_mosquitto()
    head = HEAD.replace("cards:", "payment: card\nhotlist: refuse\ncards:").replace("balance: 200", "purse: 200")
    steps = ("  - broker: down\n  - hotlist: {add: [amy]}\n  - broker: up\n  - select: A1\n  - tap: amy\n"
             "  - expect: {outcome: denied, reason: card_blocked}\n")  # fmt: skip
    result = play(tmp_path, story(tmp_path, steps, head), closing, broker)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


def test_a_machine_restarted_while_the_link_is_cut_takes_the_list_once_the_link_is_back(tmp_path, closing):
    head = HEAD.replace("cards:", "payment: card\nhotlist: refuse\ncards:").replace("balance: 200", "purse: 200")
    steps = ("  - broker: down\n  - power: cycle\n  - hotlist: {add: [amy]}\n  - power: cycle\n  - broker: up\n"
             "  - select: A1\n  - tap: amy\n  - expect: {outcome: denied, reason: card_blocked}\n")  # fmt: skip
    result = play(tmp_path, story(tmp_path, steps, head), closing)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


def test_guardian_controls_pushed_while_the_link_is_cut_hold_once_the_link_is_back(tmp_path, closing):
    head = HEAD.replace("cards:", 'controls: {lunch: {from: "12:00", to: "13:30"}}\ncards:')
    steps = ("  - broker: down\n  - controls: {card: amy, daily_limit: 20}\n  - broker: up\n  - select: A1\n"
             "  - tap: amy\n  - expect: {outcome: denied, reason: guardian_limit}\n")  # fmt: skip
    result = play(tmp_path, story(tmp_path, steps, head), closing)
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]


def test_vending_run_exits_2_for_the_storys_mistake_and_1_for_a_refusal(tmp_path):
    no_sale = story(tmp_path, "  - refund: {amount: 25}\n")
    out = subprocess.run([VENDING, "run", str(no_sale)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert f"{no_sale}:6: steps.0.refund: needs a sale" in out.stderr and "Traceback" not in out.stderr
    refused = story(tmp_path, SALE + "  - refund: {amount: 30}\n")
    out = subprocess.run([VENDING, "run", str(refused)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "FAILED line 9: expect refund: expected 'accepted', got \"refused: amount 30" in out.stdout
