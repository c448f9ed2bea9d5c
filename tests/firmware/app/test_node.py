"""The machine is one unit: assembled only in firmware/app, run by one tick, startable without the simulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# The machine's parts: wired together in firmware/app/node.py (and the runtime's loop in main.py), nowhere else
PARTS = {
    "Controller",
    "OutboxPublisher",
    "Runtime",
    "CommandProcessor",
    "Inbox",
    "MachineBooks",
    "CommandGate",
}
ASSEMBLERS = {"firmware/app/node.py", "firmware/app/main.py"}
OWN_MODULES = {  # a part's own module and the books' own factory may name it
    "firmware/controller/session.py",
    "firmware/reporting/publisher.py",
    "firmware/app/runtime.py",
    "firmware/app/commands.py",
    "firmware/reporting/inbox.py",
    "firmware/journal/books.py",
    "firmware/app/command_gate.py",
}


def constructions(path: Path) -> list[str]:
    """``Name(...)`` and ``Name.on(...)`` calls of a machine part in ``path``, as ``file:line Name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "on" and isinstance(func.value, ast.Name):
            func = func.value  # MachineBooks.on(db, ...)
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in PARTS:
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            found.append(f"{where}:{node.lineno} {name}")
    return found


def test_nothing_outside_firmware_app_builds_the_machine_s_parts_by_hand() -> None:
    sources = [
        path
        for folder in ("firmware", "simulator", "bench", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in ASSEMBLERS | OWN_MODULES
    ]
    assert len(sources) > 100, "found too few modules; did the tree move?"
    by_hand = [found for path in sources for found in constructions(path)]
    assert not by_hand, f"open a firmware.app.node.Node instead: {by_hand}"


def test_the_check_sees_a_part_built_by_hand(tmp_path: Path) -> None:
    """The check above is not vacuous: a module that wires a publisher itself is caught."""
    sample = tmp_path / "wiring.py"
    sample.write_text("def wire(a, b):\n    return OutboxPublisher(a, b), MachineBooks.on(a, b)\n")
    assert [line.split(" ")[1] for line in constructions(sample)] == ["OutboxPublisher", "MachineBooks"]


def test_python_m_firmware_runs_where_the_simulator_cannot_be_imported(tmp_path: Path) -> None:
    """``python -m firmware -h`` with ``simulator`` (and ``bench``) made unimportable: the firmware needs neither."""
    blocker = "import sys, runpy; sys.modules['simulator'] = None; sys.modules['bench'] = None; "
    run = "sys.argv = ['firmware', '-h']; runpy.run_module('firmware', run_name='__main__', alter_sys=True)"
    done = subprocess.run([sys.executable, "-c", blocker + run], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--machine" in done.stdout and "--reader" in done.stdout and "--broker" in done.stdout


def test_python_m_firmware_names_a_missing_term_key_and_exits_2(tmp_path: Path) -> None:
    blocker = "import sys, runpy; sys.modules['simulator'] = None; "
    args = ["firmware", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader", "virtual:"]
    args += ["--state-dir", str(tmp_path / "state")]
    run = f"sys.argv = {args!r}; runpy.run_module('firmware', run_name='__main__', alter_sys=True)"
    done = subprocess.run([sys.executable, "-c", blocker + run], capture_output=True, text=True, input="quit\n")
    assert done.returncode == 2, done.stderr
    assert "term key" in done.stderr and str(tmp_path / "state") in done.stderr
