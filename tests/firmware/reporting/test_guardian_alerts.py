"""Guardian alerts reach the school only: sealed to it, stored once at its backend, listed by student.

The mid-term scenario (configs/scenarios/guardian-controls-mid-term.yaml) refuses kai by a lowered
daily limit, lin by a lunch limit, and takes mei below the threshold her guardian set. Through the
embedded broker and Mosquitto with the generated ACL, the school's backend stores exactly those three
alerts, once each; `vending school alerts` names the students; the broker's traffic (the vendor's
view) carries no card number and no alert's contents, and every alert seals to the same size.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from firmware.app.console import EventPrinter
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.school.alerts import alerts_by_student
from tests.conftest import ROOT
from tests.simulator.cli.test_cli import vending
from tests.support.reporting import Capture, capture, world  # noqa: F401 - fixtures

SCENARIO = ROOT / "configs/scenarios/guardian-controls-mid-term.yaml"


def test_each_alert_reaches_the_school_once_and_nobody_else_reads_it(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    capture: Capture,  # noqa: F811 - the fixture
) -> None:
    scenario = load_scenario(SCENARIO)
    result = run_scenario(scenario, tmp_path / "machine", EventPrinter(False, io.StringIO()), attach=world)
    assert result.passed
    found = alerts_by_student(world.workdir / "school.db", world.keys.directory)
    told = sorted((a["student"], a["alert"], a.get("reason"), a.get("period"), a.get("balance")) for a in found)
    assert told == [
        ("kai", "limit_reached", "guardian_limit", None, None),
        ("lin", "limit_reached", "period_limit", "lunch", None),
        ("mei", "low_balance", None, None, 485),
    ]
    assert {(a["machine"], a["seq"]) for a in found} == {(scenario.machine.config.id, n) for n in (1, 2, 3)}

    listed = vending("school", "alerts", "--db", str(world.workdir / "school.db"), "--keys", str(world.keys.directory))
    assert listed.returncode == 0 and "mei  low_balance" in listed.stdout and "3 alert(s)" in listed.stdout

    sealed = [raw for topic, raw, _ in capture.unbatched() if topic.endswith("/guardian-alert")]
    assert len(sealed) >= 3
    sizes = {len(json.loads(json.loads(raw)["payload"])["sealed"]) for raw in sealed}
    assert len(sizes) == 1, f"a low balance and a limit seal to the same size, got {sizes}"
    wire = b"".join(raw for _, raw, _ in capture.messages)
    for card in scenario.cards.values():
        assert card.uid.encode() not in wire
    assert b"low_balance" not in wire and b"limit_reached" not in wire and b"threshold" not in wire
