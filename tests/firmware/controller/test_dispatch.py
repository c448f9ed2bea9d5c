"""The compiled dispatcher means what ``transitions`` means: same states, same callbacks, same order, same errors.

Both machines run the controller's own declaration on a recording model whose conditions answer and
whose callbacks fire further triggers as hypothesis decides; every callback call (name, state,
arguments), every refusal and the final state must be identical.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import MachineError

from firmware.controller.dispatch import CompiledMachine, Table
from firmware.controller.machine import STATES, TABLE, State, build_machine, reference_machine

TRIGGERS = sorted(TABLE.triggers)
CONDITIONS = sorted({name for steps in TABLE.steps.values() for step in steps for name in step.conditions})
CALLBACKS = sorted(
    {name for names in TABLE.on_enter.values() for name in names}
    | {name for steps in TABLE.steps.values() for step in steps for name in (*step.prepare, *step.before, *step.after)}
)


def recording_model(answers: list[int]) -> Any:
    """A model whose every callback is logged; ``answers`` decide conditions and nested triggers, in call order."""
    supply = itertools.chain(answers, itertools.repeat(0))
    log: list[tuple[Any, ...]] = []

    def callback(name: str, condition: bool) -> Any:
        def call(model: Any, *args: Any, **kwargs: Any) -> Any:
            answer = next(supply)
            log.append((name, model.state, args, tuple(sorted(kwargs.items()))))
            if condition:
                return answer % 3 != 0
            if answer % 5 == 1:  # fire another trigger from inside a callback: it must wait its turn
                try:
                    model.trigger(TRIGGERS[answer % len(TRIGGERS)], answer)
                except MachineError as exc:
                    log.append(("refused inside", str(exc)))
                    raise
            return None

        return call

    methods = {name: callback(name, False) for name in CALLBACKS} | {name: callback(name, True) for name in CONDITIONS}
    model = type("Recorder", (), methods)()
    model.log = log
    return model


def run(make: Any, answers: list[int], triggers: list[tuple[str, int]], start: State) -> tuple[Any, ...]:
    model = recording_model(answers)
    make(model, start)
    results = []
    for trigger, argument in triggers:
        try:
            results.append(getattr(model, trigger)(argument, extra=argument % 2))
        except MachineError as exc:
            results.append(("MachineError", str(exc)))
    return model.state, results, model.log


@settings(max_examples=400, deadline=None)
@given(
    start=st.sampled_from(list(State)),
    answers=st.lists(st.integers(min_value=0, max_value=30), max_size=60),
    triggers=st.lists(st.tuples(st.sampled_from(TRIGGERS), st.integers(min_value=0, max_value=9)), max_size=12),
)
def test_the_compiled_dispatcher_does_what_transitions_does(start, answers, triggers):
    assert run(build_machine, answers, triggers, start) == run(reference_machine, answers, triggers, start)


def names_after(answers: list[int], trigger: str, start: State = State.IDLE) -> tuple[State, list[str]]:
    state, _, log = run(build_machine, answers, [(trigger, 0)], start)
    return state, [entry[0] for entry in log]


def test_a_condition_that_holds_takes_the_step_and_enters_the_state():
    assert names_after([1, 0, 0], "select") == (
        State.AWAITING_CARD,
        ["slot_sellable", "remember_selection", "prompt_for_card"],
    )


def test_a_condition_that_fails_falls_through_to_the_next_declared_step():
    assert names_after([0, 0], "select") == (State.IDLE, ["slot_sellable", "deny_selection"])


def test_a_trigger_fired_inside_a_callback_waits_for_the_running_one_to_finish():
    cancel = next(a for a in range(500) if a % 5 == 1 and a % len(TRIGGERS) == TRIGGERS.index("cancel"))
    assert names_after([1, cancel, 0, 0, 0], "select") == (
        State.IDLE,
        ["slot_sellable", "remember_selection", "prompt_for_card", "record_user_cancel", "clear_session"],
    )


def test_a_declaration_keyword_the_compiler_does_not_implement_is_refused():
    with pytest.raises(ValueError, match="does not implement"):
        Table.of(STATES, [{"trigger": "x", "source": State.IDLE, "dest": None, "unless": "slot_sellable"}])


def test_set_state_moves_without_callbacks():
    model = recording_model([])
    machine = CompiledMachine(model, TABLE, State.IDLE)
    machine.set_state(State.SERVICE)
    assert model.state is State.SERVICE and model.log == []
