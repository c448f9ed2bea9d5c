"""docs/readers.md shows the reader figures bench/reader_figures.py makes from bench/results.json."""

from __future__ import annotations

import json

from bench.reader_figures import BEGIN, END, RESULTS, table
from tests.conftest import ROOT


def test_the_reader_figures_in_the_docs_come_from_the_committed_results() -> None:
    doc = (ROOT / "docs/readers.md").read_text()
    shown = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
    assert shown == table(json.loads(RESULTS.read_text())), (
        "regenerate: python bench/reader_figures.py --write docs/readers.md"
    )
