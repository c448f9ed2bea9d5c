"""Mermaid ``stateDiagram-v2`` generated from the same declaration the controller runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from firmware.controller.machine import TRANSITIONS, State


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def edges(transitions: Iterable[dict[str, Any]] = TRANSITIONS) -> list[tuple[str, str, str]]:
    """(source, dest, label) for every declared transition; internal ones loop on their source."""
    result: list[tuple[str, str, str]] = []
    for spec in transitions:
        guard = ""
        if spec.get("conditions"):
            guard = f" [{spec['conditions']}]"
        for source in _as_list(spec["source"]):
            dest = spec["dest"] if spec["dest"] is not None else source
            result.append((source.value, dest.value, f"{spec['trigger']}{guard}"))
    return result


def mermaid(transitions: Iterable[dict[str, Any]] = TRANSITIONS) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {State.IDLE.value}"]
    lines += [f"    {source} --> {dest} : {label}" for source, dest, label in edges(transitions)]
    return "\n".join(lines) + "\n"
