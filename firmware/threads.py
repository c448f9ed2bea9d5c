"""Every thread the project starts is named ``vending-...``: a test tells ours from a library's and fails on a leak."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

PREFIX = "vending-"


def named(name: str) -> str:
    return name if name.startswith(PREFIX) else f"{PREFIX}{name}"


def ours(thread: threading.Thread) -> bool:
    """True for a thread this project started (paho's, asyncio's and pytest's are not)."""
    return thread.name.startswith(PREFIX)


def daemon(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    """A named daemon thread, not yet started: it never keeps a process alive on exit."""
    return threading.Thread(target=target, name=named(name), args=args, daemon=True)
