"""docs/architecture.md shows the diagram the code would draw now."""

from __future__ import annotations

from firmware.controller.diagram import mermaid
from tests.conftest import ROOT


def test_architecture_doc_diagram_is_current():
    doc = (ROOT / "docs/architecture.md").read_text()
    block = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == mermaid(), "regenerate the diagram in docs/architecture.md with `vending diagram`"
