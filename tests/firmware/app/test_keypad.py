"""The keypad's inputs are declared once (firmware/app/keypad.py); the runtime acts on each of them."""

from __future__ import annotations

import pytest

from firmware.app.keypad import INPUT_HELP, INPUTS, NotAnInput, parse
from firmware.app.runtime import Runtime


def test_every_declared_input_has_an_action_and_every_action_an_input() -> None:
    actions = {name.removeprefix("key_") for name in vars(Runtime) if name.startswith("key_")}
    assert actions | {"quit"} == {entry.verb for entry in INPUTS}
    assert INPUT_HELP == "select SLOT | cancel | door open|close | privacy | status | stock | help | quit"


@pytest.mark.parametrize(
    ("line", "parsed"),
    [("select a1", ("select", "a1")), ("  door   close ", ("door", "close")), ("quit", ("quit", "")), ("", None)],
)
def test_a_line_that_is_an_input_is_parsed(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse(line) == parsed


@pytest.mark.parametrize("line", ["quit now", "select", "select A100", "select 1A", "door shut", "Select A1", "x"])
def test_a_line_that_is_no_input_is_refused(line: str) -> None:
    with pytest.raises(NotAnInput):
        parse(line)
