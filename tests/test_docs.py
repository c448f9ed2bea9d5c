"""The docs test themselves: generated blocks are current, examples run, named paths exist.

- Every block ``simulator.docgen`` generates (the command reference, exit codes, crash matrix,
  fleet model, soak figures) is what its generator writes from the code now.
- Every fenced ``yaml`` and ``sh`` example in README.md and docs/ runs here, or the line before it
  says ``<!-- not runnable: REASON -->``. A scenario runs on the embedded broker and on Mosquitto; a
  machine config or catalog must load; a ``sh`` block runs in bash (``set -e``) with ``vending`` on
  the PATH in a scratch directory.
- Every repository path the docs name in backticks exists (a renamed test or module shows up here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from simulator import docgen
from tests.conftest import ROOT, VENDING

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[ \t]*$")
NOT_RUNNABLE = re.compile(r"^<!-- not runnable: (.+\S) -->$")


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int
    lang: str
    text: str
    not_runnable: str | None

    @property
    def label(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def examples() -> list[Example]:
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        index = 0
        while index < len(lines):
            match = FENCE.match(lines[index])
            if match and match.group(1):
                close = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
                if match.group(1) in ("yaml", "sh", "bash"):
                    before = lines[index - 1] if index else ""
                    marker = NOT_RUNNABLE.match(before)
                    text = "\n".join(lines[index + 1 : close]) + "\n"
                    found.append(Example(doc, index + 1, match.group(1), text, marker.group(1) if marker else None))
                index = close
            elif match:  # an untyped block (a diagram, a log): not an example
                index = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            index += 1
    return found


EXAMPLES = examples()
RUNNABLE = [example for example in EXAMPLES if example.not_runnable is None]


def test_every_generated_block_is_current() -> None:
    assert docgen.stale() == [], "run `python -m simulator.docgen` and commit the result"


def test_the_command_reference_lists_every_command_and_option() -> None:
    import typer.main

    from simulator.cli import app

    reference = docgen.cli_reference()
    for path, command in docgen._commands(typer.main.get_command(app)):
        head = f"| `vending {' '.join(path)}"
        row = next((line for line in reference.splitlines() if re.match(re.escape(head) + "[ `]", line)), "")
        assert row, f"vending {' '.join(path)} is missing from the reference"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert max(param.opts, key=len) in row, f"{path}: {param.opts}"


def test_examples_are_found_and_each_unrunnable_one_says_why() -> None:
    assert len(EXAMPLES) >= 10 and RUNNABLE
    for example in EXAMPLES:
        assert example.not_runnable is None or len(example.not_runnable) > 15, example.label


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
@pytest.mark.parametrize("example", [e for e in RUNNABLE if e.lang == "yaml"], ids=lambda e: e.label)
def test_yaml_examples_run_or_load(example: Example, broker: str, tmp_path: Path) -> None:
    from firmware.config.catalog import load_catalog
    from firmware.config.machine import load_machine
    from tests.support.reporting import require_mosquitto

    data = yaml.safe_load(example.text)
    assert isinstance(data, dict), example.label
    # written where the example says it lives, so its relative paths resolve as they would for a user
    named = re.match(r"# (configs/\S+\.yaml)", example.text)
    home = ROOT / (Path(named.group(1)).parent if named else Path("configs/scenarios"))
    path = home / f"_docs_example_{os.getpid()}_{broker}.yaml"
    path.write_text(example.text)
    try:
        if "steps" in data:
            if broker == "mosquitto":
                require_mosquitto()
            run = subprocess.run(
                [VENDING, "run", "--script", str(path), "--broker", broker, "--state-dir", str(tmp_path / "state")],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert run.returncode == 0, f"{example.label} on {broker}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        elif broker == "embedded":  # a config: no broker involved
            (load_catalog if "products" in data else load_machine)(path)
    finally:
        path.unlink()


@pytest.mark.parametrize("example", [e for e in RUNNABLE if e.lang in ("sh", "bash")], ids=lambda e: e.label)
def test_shell_examples_run(example: Example, tmp_path: Path) -> None:
    bin_dir = str(Path(VENDING).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "REPO": str(ROOT)}
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example.text],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{example.label}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"


def test_the_readme_runs_top_to_bottom_in_one_directory(tmp_path: Path) -> None:
    """A reader's path: every runnable README block in order, in one directory, each on what the last left."""
    blocks = [e for e in RUNNABLE if e.doc.name == "README.md" and e.lang in ("sh", "bash")]
    assert len(blocks) >= 2, "the walkthrough's set-up and the scripted day"
    bin_dir = str(Path(VENDING).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "REPO": str(ROOT)}
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    for block in blocks:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.text], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        output = f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        assert run.returncode == 0, f"{block.label}, after the blocks before it:\n{output}"


PATH_IN_BACKTICKS = re.compile(r"`((?:firmware|simulator|tests|bench|configs|docs)/[\w./-]*\w)`")


def test_every_path_the_docs_name_exists() -> None:
    missing = []
    for doc in [*DOCS, ROOT / "docs/asyncapi.yaml"]:
        for number, line in enumerate(doc.read_text().splitlines(), start=1):
            for path in PATH_IN_BACKTICKS.findall(line) + re.findall(r"\((tests/[\w./-]+\.py)", line):
                if "*" not in path and "<" not in path and not (ROOT / path).exists():
                    missing.append(f"{doc.relative_to(ROOT)}:{number}: {path}")
    assert missing == []
