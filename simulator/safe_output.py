"""What the project writes for other programs to read, made safe to open: CSV cells, DEX fields, new files.

- A CSV cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a CR is a formula to a spreadsheet
  (OWASP: CSV injection); it is written with a leading apostrophe, so it reads as the text it is.
- A DEX field may not hold the element separator ``*``, the segment terminator ``~`` or a line end
  (EVA-DTS 6.1); a field the user gives is refused, a field from the books is cleaned.
- A file is written only inside the directory it belongs to, never through a symlink.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from firmware.errors import VendingError
from firmware.journal.dex import dex_field

__all__ = ["csv_cell", "dex_field", "write_csv"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as it may go into a CSV cell: text that a spreadsheet would run is quoted as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(stream: TextIO, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    writer = csv.writer(stream)
    writer.writerow([csv_cell(name) for name in header])
    writer.writerows([csv_cell(value) for value in row] for row in rows)


def write_inside(directory: Path, relative: str, text: str | bytes, *, replace: bool, mode: int = 0o644) -> Path:
    """Write ``directory/relative``, refusing a path that leaves the directory or passes through a symlink."""
    root = directory.resolve()
    target = directory / relative
    current = directory
    for part in Path(relative).parts:  # the directory itself may be a link; nothing inside it may
        current = current / part
        if current.is_symlink():
            raise VendingError(f"{current}: is a symlink; nothing is written through one")
    if not target.resolve().is_relative_to(root):
        raise VendingError(f"{target}: outside {directory}; nothing written")
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if replace else os.O_EXCL)
    data = text.encode("utf-8") if isinstance(text, str) else text
    with os.fdopen(os.open(target, flags, mode), "wb") as handle:
        handle.write(data)
    return target
