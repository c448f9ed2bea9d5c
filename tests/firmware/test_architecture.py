"""The structure docs/architecture.md promises, checked on the source (import-linter checks the imports).

Small modules, every port used, the controller's triggers declared for the type checker, money-path
checks that ``python -O`` cannot strip, and the wall clock read in one place only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from firmware import ports
from firmware.controller.machine import TRANSITIONS, Triggers
from tests.conftest import ROOT

MAX_MODULE_LINES = 400
SOURCES = sorted((ROOT / "firmware").rglob("*.py")) + sorted((ROOT / "simulator").rglob("*.py"))
FIRMWARE = sorted((ROOT / "firmware").rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {relative(path): len(path.read_text().splitlines()) for path in SOURCES}
    over = {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert len(sizes) > 50, "found too few modules; did the tree move?"
    assert not over, f"split these by responsibility: {over}"


def test_every_port_is_used() -> None:
    """Referenced somewhere besides its own ``class`` line: by an adapter, the controller, or another port."""
    declared = [
        name for name, value in vars(ports).items() if isinstance(value, type) and value.__module__ == ports.__name__
    ]
    assert declared, "found no ports; did ports.py move?"
    everything = "\n".join(p.read_text() for p in SOURCES)
    unused = [name for name in declared if len(re.findall(rf"\b{name}\b", everything)) < 2]
    assert not unused, f"ports nothing depends on: {unused}"


def test_every_trigger_in_the_table_is_declared_on_the_model_and_no_other() -> None:
    in_table = {spec["trigger"] for spec in TRANSITIONS}
    declared = set(Triggers.__annotations__) - {"trigger"}  # ``trigger(name, ...)`` is transitions' own
    assert declared == in_table


def test_firmware_checks_raise_named_errors_instead_of_asserting() -> None:
    asserts = [
        f"{relative(path)}:{node.lineno}"
        for path in FIRMWARE
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert not asserts, f"python -O strips these: {asserts}"


WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("time", "time")}


def reads_wall_clock(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            if (node.func.value.id, node.func.attr) in WALL_CLOCK:
                return True
    return False


def test_only_the_clock_adapter_reads_the_wall_clock() -> None:
    readers = [relative(p) for p in FIRMWARE if reads_wall_clock(p)]
    assert readers == ["firmware/clock.py"], f"time must come from the injected Clock port: {readers}"
