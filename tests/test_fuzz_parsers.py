"""Every external input parser under hypothesis: only the project's own InputError may escape.

(`make fuzz` runs the same targets coverage-guided with atheris: tests/fuzz/.)
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CONFIGS
from tests.fuzz.targets import fuzz_catalog, fuzz_command, fuzz_machine, fuzz_scenario

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
    st.sampled_from(["restock", "set_price", "enable_slot", "disable_slot", "set_lockout", "bogus"]),
    st.one_of(st.binary(max_size=300), yaml_values.map(lambda v: __import__("json").dumps(v).encode())),
)
def test_mqtt_commands_are_always_answered(name, payload):
    fuzz_command(name, payload)


def test_targets_exist_for_every_parser():
    assert Path(__file__).with_name("fuzz").joinpath("targets.py").is_file()


def test_regressions_found_by_fuzzing_stay_fixed():
    """Inputs that once crashed a target (kept in tests/fuzz/regressions/, named after what they found)."""
    regressions = sorted((Path(__file__).parent / "fuzz" / "regressions").iterdir())
    assert regressions
    for path in regressions:
        target = {"machine": fuzz_machine, "catalog": fuzz_catalog, "scenario": fuzz_scenario}[path.name.split("-")[0]]
        target(path.read_bytes())
