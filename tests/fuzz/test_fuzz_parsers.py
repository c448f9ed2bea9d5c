"""Every external input parser under hypothesis: only the project's own InputError may escape.

(`make fuzz` runs the same targets coverage-guided with atheris: tests/fuzz/.)
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.app.command_set import COMMANDS
from tests.conftest import CONFIGS, ROOT
from tests.fuzz import targets
from tests.fuzz.targets import fuzz_catalog, fuzz_command, fuzz_machine, fuzz_scenario, fuzz_wire

SEEDS = (
    [p.read_bytes() for p in (CONFIGS / "machines").glob("*.yaml")]
    + [p.read_bytes() for p in (CONFIGS / "scenarios").glob("*.yaml")]
    + [(CONFIGS / "products/campus.yaml").read_bytes()]
)

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


def mutate(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in cuts:
        if out:
            out[position % len(out)] = value
    return bytes(out)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_mutated_shipped_files_only_raise_input_errors(seed, cuts):
    data = mutate(seed, cuts)
    for target in (fuzz_machine, fuzz_catalog, fuzz_scenario):
        target(data)


@SETTINGS
@given(yaml_values)
def test_arbitrary_yaml_documents_only_raise_input_errors(value):
    data = yaml.safe_dump(value, allow_unicode=True).encode()
    for target in (fuzz_machine, fuzz_catalog, fuzz_scenario):
        target(data)


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes(data):
    for target in (fuzz_machine, fuzz_catalog, fuzz_scenario):
        target(data)


@SETTINGS
@given(
    st.sampled_from([*COMMANDS, "bogus"]),
    st.one_of(st.binary(max_size=300), yaml_values.map(lambda v: __import__("json").dumps(v).encode())),
)
def test_mqtt_commands_are_always_answered(name, payload):
    fuzz_command(name, payload)


def test_make_fuzz_runs_every_target_and_each_has_a_seed_corpus():
    """`make fuzz` runs the Makefile's FUZZ_TARGETS: each one a ``fuzz_<name>`` here, with seeds to start from."""
    listed = re.search(r"^FUZZ_TARGETS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert listed, "the Makefile lists no FUZZ_TARGETS"
    defined = {name.removeprefix("fuzz_") for name in dir(targets) if name.startswith("fuzz_")}
    assert set(listed.group(1).split()) == defined
    for name in defined:
        corpus = Path(__file__).parent / "corpus" / name
        assert corpus.is_dir() and any(corpus.iterdir()), f"no seed corpus for fuzz target {name}"


def test_regressions_found_by_fuzzing_stay_fixed():
    """Inputs that once crashed a target (kept in tests/fuzz/regressions/, named after what they found)."""
    regressions = sorted((Path(__file__).parent / "regressions").iterdir())
    assert regressions
    for path in regressions:
        target = {"machine": fuzz_machine, "catalog": fuzz_catalog, "scenario": fuzz_scenario}[path.name.split("-")[0]]
        target(path.read_bytes())


@SETTINGS
@given(st.one_of(st.binary(max_size=400), yaml_values.map(lambda v: __import__("json").dumps(v).encode())))
def test_wire_payloads_parse_to_an_object_or_a_reason(payload):
    fuzz_wire(payload)
