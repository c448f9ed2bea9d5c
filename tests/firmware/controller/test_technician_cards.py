"""Route technicians' cards: a tap opens service mode, writes the DEX audit, and records the refill.

configs/scenarios/technician-visit.yaml plays the visit through a real broker (embedded and Mosquitto
with the generated ACL); here its effects are checked where they land: the DEX file in the machine's
DEX directory (EVA-DTS 6.1 envelope and CRC), the vendor's stock report with the refill (the pick list
at the tap), and no trace of the technician's card as a payment, a sale or a card number anywhere.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from firmware.app.console import EventPrinter
from firmware.errors import InputError
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from tests.conftest import ROOT
from tests.simulator.cli.test_dex import check_envelope
from tests.support.reporting import Capture, capture, world  # noqa: F401 - fixtures

SCENARIO = ROOT / "configs/scenarios/technician-visit.yaml"


def test_a_technician_tap_exports_dex_records_the_refill_and_never_pays(
    tmp_path: Path,
    world: ReportingWorld,  # noqa: F811 - the fixture
    capture: Capture,  # noqa: F811 - the fixture
) -> None:
    scenario = load_scenario(SCENARIO)
    state_dir = tmp_path / "machine"
    result = run_scenario(scenario, state_dir, EventPrinter(False, io.StringIO()), attach=world)
    assert result.passed and result.sales == 2 and dict(result.denials) == {"out_of_service": 1}

    audits = sorted((state_dir / "dex").glob("*.dex"))
    assert len(audits) == 1, "one audit per technician's tap"
    text = audits[0].read_bytes().decode("ascii")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "every line ends in CRLF"
    lines = text.split("\r\n")[:-1]
    check_envelope(lines)
    assert any(line.startswith("PA1*A1*25*") for line in lines)

    stock = [
        json.loads(json.loads(raw)["payload"]) for topic, raw, _ in capture.unbatched() if topic.endswith("/stock")
    ]
    refills = [report["refill"] for report in stock if "refill" in report]
    assert refills == [{"A1": 3, "A2": 4, "A3": 4, "B1": 3, "B2": 3, "B3": 4, "C1": 2, "C2": 11, "D1": 2,
                        "E1": 5, "E2": 5, "E3": 4}]  # fmt: skip
    after = next(report["slots"] for report in stock if "refill" in report)
    assert all(slot["stock"] == slot["capacity"] for slot in after.values()), "every slot on the pick list is full"

    technician = scenario.technicians["route"]
    wire = b"".join(raw for _, raw, _ in capture.messages)
    books = b"".join(path.read_bytes() for path in state_dir.glob("machine.db*"))
    assert technician.encode() not in wire and technician.encode() not in books, "the card is known by its name only"
    sales = world.vendor.store.execute("SELECT COUNT(*) FROM sales") if world.vendor else [(None,)]
    assert sales[0][0] == 2, "a technician card never appears in sales"


def test_a_config_naming_technician_cards_by_uid_is_refused(tmp_path: Path) -> None:
    from firmware.config.machine import load_machine

    text = (ROOT / "configs/machines/demo.yaml").read_text()
    path = tmp_path / "machine.yaml"
    path.write_text(text + '\ntechnicians: {key: technician.key, cards: ["04ACE10000AB01"]}\n')
    for name in ("products", "rules"):
        (tmp_path / name).symlink_to(ROOT / "configs" / name)
    with pytest.raises(InputError, match="technicians.cards.*32-hex-digit name"):
        load_machine(path)


def test_a_technician_card_given_twice_is_named_once_and_a_config_listing_one_twice_is_refused(tmp_path: Path) -> None:
    """`keys technician --card 04A1B2C3 --card 04a1b2c3` printed the card's name twice, and a config took it so."""
    import subprocess

    from firmware.config.machine import load_machine
    from tests.conftest import VENDING

    (tmp_path / "keys").mkdir(mode=0o700)
    command = [VENDING, "keys", "technician", "--key", str(tmp_path / "keys" / "technician.key")]
    printed = subprocess.run([*command, "--card", "04A1B2C3", "--card", "04a1b2c3"], capture_output=True, text=True)
    assert printed.returncode == 0, printed.stderr
    names = printed.stdout.split("cards: [")[1].split("]")[0].split(", ")
    assert len(names) == 1 and len(names[0]) == 32, printed.stdout
    path = tmp_path / "machine.yaml"
    path.write_text((ROOT / "configs/machines/demo.yaml").read_text()
                    + f"\ntechnicians: {{key: keys/technician.key, cards: [{names[0]}, {names[0]}]}}\n")  # fmt: skip
    for name in ("products", "rules"):
        (tmp_path / name).symlink_to(ROOT / "configs" / name)
    with pytest.raises(InputError, match="technicians.cards: a technician card is listed twice"):
        load_machine(path)


def test_a_second_tap_with_the_door_still_open_waits_for_the_door_and_refills_once(tmp_path: Path) -> None:
    """Before, the second tap reopened sales with the service door still open (and the door's closing was refused)."""
    head = SCENARIO.read_text().split("steps:")[0].replace("../machines/", f"{ROOT}/configs/machines/")
    steps = """steps:
  - tap: route
  - door: open
  - tap: route
  - expect: {state: service, display: "close the door to resume sales"}
  - select: A1
  - tap: amy
  - expect: {outcome: denied, reason: out_of_service}
  - door: close
  - expect: {state: idle, stock: {A1: 10, C2: 12}}
  - select: A1
  - tap: amy
  - expect: {outcome: vended, stock: {A1: 9}}
"""
    story = tmp_path / "visit.yaml"
    story.write_text(head + steps)
    result = run_scenario(load_scenario(story), tmp_path / "machine", EventPrinter(False, io.StringIO()))
    assert result.passed, [(f.line, f.key, f.expected, f.actual) for f in result.failures]
    refills = [entry for entry in result_entries(tmp_path / "machine") if entry == "refilled"]
    assert refills == ["refilled"], "the visit ended once, when the door closed"


def result_entries(state_dir: Path) -> list[str]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(state_dir / "machine.db")) as conn:
        return [str(kind) for (kind,) in conn.execute("SELECT kind FROM journal ORDER BY id")]
