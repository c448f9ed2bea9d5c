"""The bad-input corpus: every malformed file is refused by `vending check` with its exact message
(FILE:LINE: field.path: reason), exit 2, and nothing is created or changed."""

from __future__ import annotations

from contextlib import chdir

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "bad_inputs"
EXPECTED = dict(line.split("\t", 1) for line in (CORPUS / "expected.tsv").read_text().splitlines())


def check(path: str) -> tuple[int, str]:
    with chdir(ROOT):  # messages name files as given on the command line
        result = CliRunner().invoke(app, ["check", path])
    return result.exit_code, result.stderr.rstrip("\n")


def test_the_corpus_is_large_and_fully_specified():
    files = {p.name for p in CORPUS.glob("*.yaml")}
    assert len(files) + 1 >= 50  # + the oversized file made at test time
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_input_is_refused_with_its_exact_message(name):
    before = sorted(p.name for p in CORPUS.iterdir())
    code, message = check(f"tests/bad_inputs/{name}")
    assert code == 2
    assert message == EXPECTED[name]
    assert sorted(p.name for p in CORPUS.iterdir()) == before


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    big = tmp_path / "oversized.yaml"
    big.write_bytes(b"id: x\n" + b"#" * 1_000_100 + b"\n")
    result = CliRunner().invoke(app, ["check", str(big)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{big}: file is 1000107 bytes; the limit is 1000000"
