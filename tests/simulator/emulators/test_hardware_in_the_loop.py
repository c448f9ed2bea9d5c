"""`vending run --reader emulate:pn532`: every shipped scenario through the emulated PN532 and the real
driver gives the same outcomes, balances, journal and reports as with the virtual reader.

Both runs share the term key (so the pseudonyms match); transaction ids are random by design and
are compared by their order of appearance.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from firmware.identity.keys import key_path
from simulator.cli import app, reporting
from simulator.scenarios import load_scenario
from simulator.scenarios.runner import ScenarioRunner
from simulator.scenarios.tap_sources import tap_source_for
from tests.conftest import ROOT

SCENARIOS = sorted((ROOT / "configs/scenarios").glob("*.yaml"))
TXN = re.compile(r"TPE-[A-Z0-9-]+-[0-9a-f]{16}")
PSEUDONYM = re.compile(r"(?<![a-z0-9])[a-z2-7]{26}(?![a-z0-9])")  # a visit pseudonym
LIST_VERSION = re.compile(r'version\\": \d{15,17}')  # the issuer's credits list: numbered by the time it was made
COMMAND_ID = re.compile(r"cmd-[0-9a-f]{12}")  # an operator's command, a fresh id each run
CARD_NAME = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")  # a card as the school's controls name it (its key)


def normalised(rows: list[Any]) -> list[str]:
    """Rows as text with each transaction id, and each visit's pseudonym (keyed by it), replaced by its order."""
    seen: dict[str, str] = {}
    text = json.dumps(rows, default=str)
    text = TXN.sub(lambda m: seen.setdefault(m.group(0), f"txn#{len(seen)}"), text)
    text = PSEUDONYM.sub(lambda m: seen.setdefault(m.group(0), f"visit#{len(seen)}"), text)
    text = LIST_VERSION.sub("version-of-the-list", text)
    text = COMMAND_ID.sub(lambda m: seen.setdefault(m.group(0), f"command#{len(seen)}"), text)
    text = CARD_NAME.sub(lambda m: seen.setdefault(m.group(0), f"card#{len(seen)}"), text)
    return json.loads(text)


def day(path: Path, reader: str, state_dir: Path, key_from: Path | None) -> dict[str, Any]:
    scenario = load_scenario(path)
    if key_from is not None:
        state_dir.mkdir(parents=True)
        shutil.copy(key_path(key_from), key_path(state_dir))
    broker = "embedded" if scenario.reporting_step() is not None else "none"
    with reporting(broker) as world:
        runner = ScenarioRunner(
            scenario,
            state_dir,
            link=world.machine_link(scenario.machine.config.id) if world else None,
            taps=tap_source_for(reader, lambda text: None),
            link_for=world.machine_link if world else None,  # a scenario's other machines (stations.py)
        )
        detach = world(runner) if world else None
        try:
            result = runner.run()
            books = runner.machine.books
            seen = {
                "outcome": [
                    result.sales,
                    result.revenue,
                    dict(result.denials),
                    dict(result.cancellations),
                    result.refunds,
                    result.power_cycles,
                ],
                "expectations": [(e.line, e.key, e.ok) for e in result.expectations],
                "balances": {name: books.wallet.balance(card.uid).amount for name, card in scenario.cards.items()},
                "stock": books.inventory.stock(),
                "journal": normalised(  # less the issuer's credits lists: one made after a card reported its credit
                    runner.machine.db.conn.execute(  # arrives when the broker brings it, not at a step of the story
                        "SELECT at, kind, data FROM journal WHERE kind != 'credits_applied' ORDER BY id"
                    ).fetchall()
                ),
            }
        finally:
            if callable(detach):
                detach()
            runner.close()
        if world is not None and world.vendor is not None:
            seen["reports"] = normalised(
                world.vendor.store.execute("SELECT seq, kind, payload FROM reports ORDER BY machine, seq")
            )
    return seen


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_a_scenario_through_the_emulated_pn532_equals_the_virtual_run(path, tmp_path):
    virtual = day(path, "virtual", tmp_path / "virtual", None)
    emulated = day(path, "emulate:pn532", tmp_path / "emulated", key_from=tmp_path / "virtual")
    assert emulated == virtual
    assert virtual["expectations"] and all(ok for *_, ok in virtual["expectations"])


def test_run_reader_option_refuses_unknown_readers_and_cards_a_reader_cannot_read():
    scenario = str(ROOT / "configs/scenarios/normal-morning.yaml")
    for reader, message in [
        ("emulate:nfc9000", "emulate one of emulate:pn532, emulate:rdm6300, emulate:line"),
        ("bogus:/dev/ttyUSB0", "unknown reader driver 'bogus'"),
        ("emulate:rdm6300", "cannot read card(s) amy (7-byte uid …E5F6)"),
    ]:
        result = CliRunner().invoke(app, ["run", "--script", scenario, "--broker", "none", "--reader", reader])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not any(card.uid in result.output for card in load_scenario(Path(scenario)).cards.values())


def test_a_morning_of_125_khz_tags_through_the_emulated_rdm6300_equals_the_virtual_run(tmp_path):
    """EM4100 ids are 5 bytes: cards, the virtual reader and the RDM6300's driver take them alike."""
    story = (ROOT / "configs/scenarios/normal-morning.yaml").read_text()
    uids = re.findall(r'uid: "([0-9A-F]+)"', story)
    for number, uid in enumerate(uids):
        story = story.replace(uid, f"1A2B3C4D{number:02X}")
    story = story.replace("machine: ../machines/", f"machine: {ROOT / 'configs/machines'}/")
    path = tmp_path / "tags.yaml"
    path.write_text(story)
    virtual = day(path, "virtual", tmp_path / "virtual", None)
    emulated = day(path, "emulate:rdm6300", tmp_path / "emulated", key_from=tmp_path / "virtual")
    assert emulated == virtual and len(uids) >= 3
    assert len(virtual["expectations"]) == 28 and all(ok for *_, ok in virtual["expectations"])


def test_run_with_emulated_line_reader_passes_the_scenario():
    scenario = str(ROOT / "configs/scenarios/normal-morning.yaml")
    result = CliRunner().invoke(app, ["run", "--script", scenario, "--broker", "none", "--reader", "emulate:line"])
    assert result.exit_code == 0 and "expectations 28 passed, 0 failed" in result.output


def test_a_real_reader_url_asks_for_each_card_and_asks_again_after_a_wrong_one(tmp_path, closing):
    """A person at the desk, played by the prompt: the first time they tap the wrong card."""
    from simulator.emulators.devices import PN532Device
    from simulator.scenarios.runner import run_scenario

    device = closing(PN532Device(tmp_path / "reader0").start())
    scenario = load_scenario(ROOT / "configs/scenarios/normal-morning.yaml")
    uids = {name: card.uid for name, card in scenario.cards.items()}
    prompts: list[str] = []

    def person(text: str) -> None:
        prompts.append(text)
        wanted = next(name for name in uids if f"tap card {name} " in text.rsplit(";", 1)[-1])
        wrong_first = len(prompts) == 1
        device.tap(uids["lin"] if wrong_first and wanted != "lin" else uids[wanted])

    result = run_scenario(scenario, tmp_path / "machine", taps=tap_source_for(f"pn532:{tmp_path / 'reader0'}", person))
    assert result.passed and result.sales == 5
    assert prompts[0] == f"tap card amy (…{uids['amy'][-4:]}) now"
    assert prompts[1].startswith(f"that was another card (…{uids['lin'][-4:]}); tap card amy")
    assert len(prompts) == 1 + sum(1 for step in scenario.steps if step.kind == "tap")
