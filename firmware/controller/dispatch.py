"""The declaration in machine.py compiled into a table, so a trigger costs a lookup and its own callbacks.

``transitions`` is the reference for what the declaration means: the tests build it from the same
declaration (it refuses an unknown state or a malformed transition), and a property test drives both
with the same random triggers and holds them to the same states and the same callbacks in the same
order (tests/firmware/controller/test_dispatch.py). The diagram is drawn from the declaration itself
(diagram.py). On the hot path its generality cost a vend more than
its own callbacks did (an event object per trigger, each callback looked up by name, debug log
calls): this runs the same semantics, the subset the declaration uses, without them.

The semantics, as ``transitions`` defines them for a queued machine with ``send_event=False``: a
trigger fired from inside a callback waits until the running one has finished; the transitions of a
trigger from the current state are tried in declaration order, and the first whose ``prepare``
callbacks run and whose ``conditions`` all hold is taken: ``before``, then (unless ``dest`` is None,
an internal transition) the new state and its ``on_enter``, then ``after``. Every callback gets the
trigger's arguments. A trigger the current state does not know raises ``MachineError``; an exception
in a callback empties the queue and propagates. A queued trigger returns True.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from transitions import MachineError

Callback = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Step:
    """One declared transition, its callbacks named (compiled once per declaration)."""

    dest: Any
    prepare: tuple[str, ...]
    conditions: tuple[str, ...]
    before: tuple[str, ...]
    after: tuple[str, ...]


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Table:
    """(trigger, state) -> the steps to try, and each state's ``on_enter``: the declaration, read once."""

    steps: dict[tuple[str, Any], tuple[Step, ...]]
    on_enter: dict[Any, tuple[str, ...]]
    triggers: frozenset[str]

    @classmethod
    def of(cls, states: list[dict[str, Any]], transitions: list[dict[str, Any]]) -> Table:
        unknown = {key for spec in transitions for key in spec} - {"trigger", "source", "dest", *Step.__slots__}
        unknown |= {key for spec in states for key in spec} - {"name", "on_enter"}
        if unknown:  # a keyword this compiler does not implement would be silently ignored: refuse instead
            raise ValueError(f"the compiled dispatcher does not implement {sorted(unknown)}")
        steps: dict[tuple[str, Any], list[Step]] = {}
        for spec in transitions:
            sources = spec["source"] if isinstance(spec["source"], list) else [spec["source"]]
            step = Step(
                spec["dest"], *(_names(spec.get(part)) for part in ("prepare", "conditions", "before", "after"))
            )
            for source in sources:
                steps.setdefault((spec["trigger"], source), []).append(step)
        on_enter = {spec["name"]: _names(spec.get("on_enter")) for spec in states}
        triggers = frozenset(spec["trigger"] for spec in transitions)
        return cls({key: tuple(found) for key, found in steps.items()}, on_enter, triggers)


class Bound(NamedTuple):
    """A step with the model's callbacks looked up: what ``_run`` walks."""

    step: Step
    prepare: tuple[Callback, ...]
    conditions: tuple[Callback, ...]
    before: tuple[Callback, ...]
    enter: tuple[Callback, ...]
    after: tuple[Callback, ...]


Plan = tuple[Bound, ...]


class CompiledMachine:
    """Drives ``model.state`` through a ``Table``; binds one method per trigger on the model, and ``trigger``."""

    def __init__(self, model: Any, table: Table, initial: Any) -> None:
        self.model = model
        self._table = table
        # (trigger, state) -> its steps with the model's callbacks looked up, made on first use
        self._plans: dict[tuple[str, Any], Plan] = {}
        self._queue: deque[tuple[str, tuple[Any, ...], dict[str, Any]]] = deque()
        model.state = initial
        for name in table.triggers:
            setattr(model, name, functools.partial(self.fire, name))
        model.trigger = self.fire

    def set_state(self, state: Any) -> None:
        """Put the model in ``state`` without callbacks (power-on recovery, as ``Machine.set_state``)."""
        self.model.state = state

    def fire(self, trigger: str, *args: Any, **kwargs: Any) -> bool:
        self._queue.append((trigger, args, kwargs))
        if len(self._queue) > 1:
            return True  # a callback fired it: it runs when the current trigger has finished
        while self._queue:
            name, queued_args, queued_kwargs = self._queue[0]
            try:
                self._run(name, queued_args, queued_kwargs)
            except BaseException:
                self._queue.clear()
                raise
            self._queue.popleft()
        return True

    def _plan(self, trigger: str, state: Any) -> Plan:
        steps = self._table.steps.get((trigger, state))
        if steps is None:
            raise MachineError(f"Can't trigger event {trigger} from state {state.name}!")

        def bound(names: tuple[str, ...]) -> tuple[Callback, ...]:
            return tuple(getattr(self.model, name) for name in names)

        enter = self._table.on_enter
        plan = tuple(
            Bound(step, bound(step.prepare), bound(step.conditions), bound(step.before),
                  bound(enter.get(step.dest, ())), bound(step.after))
            for step in steps
        )  # fmt: skip
        self._plans[(trigger, state)] = plan
        return plan

    def _run(self, trigger: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Step | None:
        """Take the first step of ``trigger`` from the current state whose conditions hold; the one taken."""
        model = self.model
        plan = self._plans.get((trigger, model.state)) or self._plan(trigger, model.state)
        for step, prepare, conditions, before, enter, after in plan:
            for callback in prepare:
                callback(*args, **kwargs)
            for callback in conditions:
                if not callback(*args, **kwargs):
                    break
            else:
                for callback in before:
                    callback(*args, **kwargs)
                if step.dest is not None:
                    model.state = step.dest
                    for callback in enter:
                        callback(*args, **kwargs)
                for callback in after:
                    callback(*args, **kwargs)
                return step
        return None
