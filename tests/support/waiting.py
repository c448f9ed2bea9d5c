"""Waiting for another thread or process to get somewhere: a condition with a generous limit, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(probe: Callable[[], T], timeout: float) -> T | None:
    """Call ``probe`` until it returns something truthy (returned), or ``timeout`` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def eventually(probe: Callable[[], T], timeout: float = 20.0, what: str | Callable[[], str] = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail the test if it never does.

    ``what`` may be a function: it is asked at the failure, so the message can say where things stood.
    """
    value = poll(probe, timeout)
    if not value:
        said = what() if callable(what) else what
        raise AssertionError(f"{said} did not happen within {timeout}s")
    return value
