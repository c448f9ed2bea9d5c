"""Help that reads like the tools people know: a flag shows no ``<bool>`` value placeholder.

Typer 0.29 prints a type placeholder for every option, flags included (``--json <bool>``), which
reads as if the flag took a value. Flags take none, so their placeholder is dropped; every other
option keeps its ``<path>``/``<int>``. Applied once, when the CLI is imported.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption


def drop_flag_placeholders() -> None:
    original = TyperOption.display_type_rich
    if getattr(original, "_drops_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else original(self, ctx)

    display_type_rich._drops_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
