"""docs/benchmarks.md shows the before/after table that bench/compare.py makes from the committed results."""

from __future__ import annotations

import json

from bench.compare import BEGIN, END, table
from tests.conftest import ROOT


def test_the_refactor_table_in_the_docs_is_generated_from_the_committed_results() -> None:
    before = json.loads((ROOT / "bench/results-before-refactor.json").read_text())
    after = json.loads((ROOT / "bench/results-after-refactor.json").read_text())
    doc = (ROOT / "docs/benchmarks.md").read_text()
    shown = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
    assert shown == table(before, after).strip("\n"), (
        "regenerate: python bench/compare.py bench/results-before-refactor.json bench/results-after-refactor.json "
        "--write docs/benchmarks.md"
    )
