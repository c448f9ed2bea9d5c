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


def pattern_text(node: ast.expr | None) -> str:
    """A pattern's source text as written: a literal (text or bytes), or an f-string with its holes left out."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return node.value if isinstance(node.value, str) else node.value.decode("latin-1")
    if isinstance(node, ast.JoinedStr):
        literal = (part.value for part in node.values if isinstance(part, ast.Constant))
        return "".join(text for text in literal if isinstance(text, str))
    return ""


def whole(text: str) -> bool:
    return text.startswith("^") and text.endswith("$")


def anchored_patterns(tree: ast.Module) -> set[str]:
    """Module-level ``NAME = re.compile(r"^...$")`` or ``NAME = r"^...$"``: a pattern meant to hold a whole value."""
    names = set()
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        value: ast.expr | None = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "compile":
            value = value.args[0] if value.args else None
        if whole(pattern_text(value)):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names


def partial_matches(tree: ast.Module, declared: set[str]) -> list[ast.Call]:
    """``NAME.match(value)``, ``re.match(NAME, value)`` or ``re.match(r"^...$", value)`` (and ``search``)."""
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("match", "search") or not isinstance(owner := node.func.value, ast.Name):
            continue
        first = node.args[0] if node.args else None
        if owner.id in declared or (
            owner.id == "re" and ((isinstance(first, ast.Name) and first.id in declared) or whole(pattern_text(first)))
        ):
            calls.append(node)
    return calls


def test_a_whole_value_pattern_is_used_with_fullmatch() -> None:
    """``$`` also matches before a final newline: ``MACHINE_ID.match("TPE-X\\n")`` held, and a machine id with a
    newline passed `vending check` into topics, key files and txn ids. The same pattern text stays portable to
    pydantic's and JSON Schema's engines, where ``$`` is the end; Python's ``fullmatch`` ends it here too."""
    trees = {path: ast.parse(path.read_text()) for path in SOURCES}
    declared = set().union(*(anchored_patterns(tree) for tree in trees.values()))
    assert {"MACHINE_ID", "TXN_ID", "SCHOOL_CODE", "CARD_UID", "COMMAND_ID", "HEX_UID", "PERIOD_NAME"} <= declared
    partial = [
        f"{relative(path)}:{call.lineno}: {ast.unparse(call.func)}"
        for path, tree in trees.items()
        for call in partial_matches(tree, declared)
    ]
    assert not partial, partial


def test_numbers_typed_by_people_are_ascii_digits() -> None:
    """``str.isdigit`` takes '²' and '①', which ``int`` refuses: a roster's daily limit of '²' was exit 70.
    ``firmware.domain.WHOLE_NUMBER`` says what a whole number is, once."""
    calls = [
        f"{relative(path)}:{node.lineno}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("isdigit", "isdecimal", "isnumeric")
    ]  # fmt: skip
    assert not calls, calls
