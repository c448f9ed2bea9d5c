"""`vending diagram` is valid Mermaid stateDiagram-v2 and says exactly what the declaration says."""

from __future__ import annotations

import re
import subprocess

from firmware.controller.diagram import edges, mermaid
from firmware.controller.machine import TRANSITIONS, State
from tests.conftest import VENDING

EDGE = re.compile(r"^    ([a-z_]+) --> ([a-z_]+) : ([a-z_]+)( \[[a-z_]+\])?$")


def test_mermaid_syntax_line_by_line():
    lines = mermaid().splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1] == "    [*] --> idle"
    states = {s.value for s in State}
    for line in lines[2:]:
        match = EDGE.match(line)
        assert match, f"not a Mermaid transition line: {line!r}"
        assert match.group(1) in states and match.group(2) in states


def test_diagram_edges_equal_the_declaration():
    declared = set()
    for spec in TRANSITIONS:
        sources = spec["source"] if isinstance(spec["source"], list) else [spec["source"]]
        for source in sources:
            dest = spec["dest"] if spec["dest"] is not None else source
            declared.add((source.value, dest.value, spec["trigger"]))
    drawn = {(s, d, label.split(" ")[0]) for s, d, label in edges()}
    assert drawn == declared
    assert len(mermaid().splitlines()) == 2 + len(edges())


def test_cli_prints_the_same_diagram():
    out = subprocess.run([VENDING, "diagram"], capture_output=True, text=True, check=True)
    assert out.stdout == mermaid()
