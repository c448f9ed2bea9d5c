"""A vend's six transitions: the compiled dispatcher against a hand-written one (the floor) and ``transitions``.

One vend is the controller's own sequence: select, tap, then the triggers its callbacks fire in turn
(approve, drop_detected, settled, end_session), queued as the controller queues them. The model's
callbacks do nothing else, so what is timed is dispatch alone. The hand-written dispatcher is the
same six steps as if/else code with the same queue: what dispatch cannot go below. Target: the
compiled dispatcher within 1.5x of it. Rounds alternate floor and compiled (``interleaved``).
Run: .venv/bin/python bench/dispatch.py [--vends N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROUNDS, interleaved, merge_results, spread  # noqa: E402
from firmware.controller.machine import TABLE, State, build_machine, reference_machine  # noqa: E402

TARGET = 1.5
NESTED = {
    "authorise": "approve",
    "run_motor": "drop_detected",
    "finish_vend": "settled",
    "close_session": "end_session",
}


class VendModel:
    """The controller's callbacks on a vend's path, doing nothing but firing what the controller fires."""

    state: State
    trigger: Callable[..., bool]

    def __getattr__(self, name: str) -> Any:  # a callback off the vend's path is looked up, never run
        if name in TABLE.triggers or name == "trigger" or name.startswith("_"):
            raise AttributeError(name)

        def off_path(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(f"{name}: off the vend's path")

        return off_path


def callbacks() -> dict[str, Any]:
    """Conditions that hold, callbacks that do nothing, and the four that fire the next trigger."""
    names = {"slot_sellable": True, "card_known": True, "debit_confirmed": True}
    methods: dict[str, Any] = {name: (lambda self, *a, **k: True) for name in names}
    for name in ("remember_selection", "prompt_for_card", "remember_card", "debit_card", "confirm_drop"):
        methods[name] = lambda self, *a, **k: None
    methods["clear_session"] = lambda self, *a, **k: None
    for name, fired in NESTED.items():
        methods[name] = lambda self, *a, _fired=fired, **k: self.trigger(_fired)
    return methods


Model = type("Model", (VendModel,), callbacks())


class HandWritten:
    """The floor: the vend's six transitions as plain code, with the same queue for nested triggers."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.queue: deque[str] = deque()
        model.state = State.IDLE
        model.trigger = self.fire

    def fire(self, trigger: str) -> bool:
        self.queue.append(trigger)
        if len(self.queue) > 1:
            return True
        while self.queue:
            self.step(self.queue[0])
            self.queue.popleft()
        return True

    def step(self, trigger: str) -> None:
        model, state = self.model, self.model.state
        if trigger == "select" and state is State.IDLE and model.slot_sellable():
            model.remember_selection()
            model.state = State.AWAITING_CARD
            model.prompt_for_card()
        elif trigger == "tap" and state is State.AWAITING_CARD and model.card_known():
            model.remember_card()
            model.state = State.AUTHORISING
            model.authorise()
        elif trigger == "approve" and state is State.AUTHORISING:
            model.debit_card()
            if model.debit_confirmed():
                model.state = State.VENDING
                model.run_motor()
        elif trigger == "drop_detected" and state is State.VENDING:
            model.confirm_drop()
            model.state = State.VEND_SUCCESS
            model.finish_vend()
        elif trigger == "settled" and state is State.VEND_SUCCESS:
            model.state = State.SESSION_COMPLETE
            model.close_session()
        elif trigger == "end_session" and state is State.SESSION_COMPLETE:
            model.state = State.IDLE
            model.clear_session()
        else:
            raise RuntimeError(f"{trigger} from {state}: off the vend's path")


def vends_per_s(bind: Callable[[Any], Any], vends: int) -> float:
    model = Model()
    bind(model)
    started = time.perf_counter()
    for _ in range(vends):
        model.trigger("select")
        model.trigger("tap")
    elapsed = time.perf_counter() - started
    if model.state is not State.IDLE:
        raise RuntimeError(f"a vend did not come back to idle: {model.state}")
    return vends / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vends", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    rounds = interleaved(
        lambda _: vends_per_s(HandWritten, args.vends),
        lambda _: vends_per_s(build_machine, args.vends),
        args.rounds,
    )
    reference = [vends_per_s(reference_machine, args.vends // 4) for _ in range(3)]
    # dispatch cost per vend is 1/rate: compiled cost / floor cost = floor rate / compiled rate
    cost = [1 / ratio for ratio in rounds["ratio"]["rounds"]]
    merge_results(
        "dispatch",
        {
            "vends": args.vends,
            "floor_vends_per_s": rounds["limit"],
            "compiled_vends_per_s": rounds["work"],
            "cost_over_floor": spread(cost),
            "transitions_vends_per_s": round(max(reference)),
            "target_cost_over_floor_max": TARGET,
        },
    )
    median = spread(cost)["median"]
    print(
        f"hand-written floor {rounds['limit']['median']:,.0f} vends/s, compiled {rounds['work']['median']:,.0f}, "
        f"transitions {max(reference):,.0f}; compiled costs {median:.2f}x the floor (target <= {TARGET})"
    )


if __name__ == "__main__":
    main()
