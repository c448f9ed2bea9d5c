"""Bad configs and scenarios: each refused with FILE:LINE: field.path: reason, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.config.catalog import load_catalog
from firmware.config.machine import load_machine
from firmware.errors import InputError
from simulator.scenarios.schema import load_scenario
from tests.conftest import CONFIGS

CATALOG = CONFIGS / "products/campus.yaml"
MACHINE = (CONFIGS / "machines/demo.yaml").read_text().replace("../products/campus.yaml", str(CATALOG))
SCENARIO_HEAD = f'machine: {CONFIGS / "machines/demo.yaml"}\nstart: "2026-03-02T10:00:00+08:00"\n'
CARDS = 'cards:\n  amy: {uid: "04A1B2C3D4E5F6", profile: student, balance: 100}\n'


def line(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``: the line the error must name."""
    return next(i for i, text_line in enumerate(text.splitlines(), 1) if needle in text_line)


def case(name: str, text: str, needle: str, message: str) -> tuple[str, str, str]:
    return name, text, f":{line(text, needle)}: {message}"


MACHINE_CASES = [
    case(
        "unknown key", MACHINE.replace("currency: TWD", "currency: TWD\ncolour: red"), "colour", "colour: unknown key"
    ),
    case(
        "bad timezone",
        MACHINE.replace("Asia/Taipei", "Asia/Taipeh"),
        "timezone",
        "timezone: unknown timezone 'Asia/Taipeh' (use an IANA name such as Asia/Taipei)",
    ),
    case(
        "string for a number",
        MACHINE.replace("capacity: 10, stock: 8", "capacity: ten, stock: 8"),
        "capacity: ten",
        "slots.A1.capacity: Input should be a valid integer",
    ),
    case(
        "stock over capacity",
        MACHINE.replace("capacity: 10, stock: 8", "capacity: 10, stock: 11"),
        "stock: 11",
        "slots.A1: stock 11 is more than capacity 10",
    ),
    case(
        "unknown product",
        MACHINE.replace("product: milk-lowfat-290", "product: caviar"),
        "caviar",
        f"slots.A1.product: unknown product 'caviar' (not in {CATALOG})",
    ),
    case(
        "unquoted time",
        MACHINE.replace('from: "11:00"', "from: 11:00"),
        "from: 11:00",
        'lockouts.0.from: expected a time as a quoted "HH:MM" string, got 660',
    ),
    case(
        "window backwards",
        MACHINE.replace('to: "13:00"', 'to: "10:00"'),
        'to: "10:00"',
        "lockouts.0: 'from' 11:00 must be before 'to' 10:00",
    ),
    case(
        "missing field",
        MACHINE.replace("timezone: Asia/Taipei\n", ""),
        "id:",  # the mapping's first line
        "timezone: required field is missing",
    ),
    case(
        "bad slot code",
        MACHINE.replace("  A1: {", "  a1: {"),
        "slots:",
        "slots: slot code 'a1' must be a letter and one or two digits, like A1",
    ),
    case(
        "duplicate key",
        MACHINE.replace("currency: TWD", "currency: TWD\ncurrency: USD"),
        "currency: USD",
        "currency: duplicate key",
    ),
    case(
        "unknown rule set",
        MACHINE.replace("tw-moe-2016,", "tw-moe-2099,"),
        "rules:",
        "rules.0: unknown rule set 'tw-moe-2099'; known: tpe-no-bottled-water, tw-moe-2016",
    ),
]


@pytest.mark.parametrize("name,text,message", MACHINE_CASES, ids=[c[0] for c in MACHINE_CASES])
def test_machine_config_errors(tmp_path: Path, name: str, text: str, message: str):
    path = tmp_path / "machine.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_machine(path)
    assert str(caught.value) == f"{path}{message}"


SCENARIO_CASES = [
    (
        "unknown step",
        SCENARIO_HEAD + CARDS + "steps:\n  - select: A1\n  - dance: true\n",
        ":7: steps.1.dance: unknown step 'dance'; known: at, backend, broker, cancel, clock, controls, door, empty, "
        "expect, fault, hotlist, issuer, jam, machine, note, power, privacy, recover, refund, restock, select, tap, "
        "tear, topup, wait",
    ),
    (
        "unknown card",
        SCENARIO_HEAD + CARDS + "steps:\n  - tap: bob\n",
        ":6: steps.0.tap: unknown card 'bob'; cards: amy",
    ),
    (
        "unknown slot",
        SCENARIO_HEAD + CARDS + "steps:\n  - select: Q7\n",
        ":6: steps.0.select: unknown slot 'Q7'; the machine has A1, A2, A3, B1, B2, B3, C1, C2, D1, E1, E2, E3",
    ),
    (
        "time backwards",
        SCENARIO_HEAD + CARDS + 'steps:\n  - at: "11:00"\n  - at: "10:30"\n',
        ":7: steps.1.at: time goes backwards: 10:30 is before 11:00:00",
    ),
    (
        "bad uid",
        SCENARIO_HEAD + 'cards:\n  amy: {uid: "XYZ", profile: student, balance: 1}\nsteps:\n  - cancel: true\n',
        ":4: cards.amy.uid: uid must be 4, 5, 7 or 10 bytes of hex (8, 10, 14 or 20 hex digits)",
    ),
    (
        "expect key",
        SCENARIO_HEAD + CARDS + "steps:\n  - expect: {mood: happy}\n",
        ":6: steps.0.expect.mood: unknown key",
    ),
    (
        "bad duration",
        SCENARIO_HEAD + CARDS + "steps:\n  - wait: soon\n",
        ":6: steps.0.wait: expected a duration like 90s, 10m, 2h, 1h30m or 7d, got 'soon'",
    ),
    (
        "start without offset",
        'machine: x.yaml\nstart: "2026-03-02T10:00:00"\nsteps:\n  - cancel: true\n',
        ":2: start: start needs a UTC offset, e.g. 2026-03-02T10:55:00+08:00",
    ),
    ("not utf-8", None, ":2: not valid UTF-8 (byte 0xFF)"),
    ("empty", "", ":1: file is empty"),
]


@pytest.mark.parametrize("name,text,message", SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_errors(tmp_path: Path, name: str, text: str | None, message: str):
    path = tmp_path / "scenario.yaml"
    if text is None:
        path.write_bytes(b"machine: x\n\xff\xfe\n")
    else:
        path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}{message}"


def test_catalog_rejects_a_negative_price(tmp_path: Path):
    path = tmp_path / "catalog.yaml"
    path.write_text("products:\n  x:\n    name: {zh-TW: 甲, en: X}\n    category: snack\n    price: -1\n")
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert str(caught.value) == f"{path}:5: products.x.price: Input should be greater than 0"
