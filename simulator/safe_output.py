"""What the project writes for other programs to read, made safe to open: CSV cells, DEX fields, new files.

- A CSV cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a CR is a formula to a spreadsheet
  (OWASP: CSV injection); it is written with a leading apostrophe, so it reads as the text it is.
- A DEX field may not hold the element separator ``*``, the segment terminator ``~`` or a line end
  (EVA-DTS 6.1); a field the user gives is refused, a field from the books is cleaned.
- A file is written only inside the directory it belongs to, never through a symlink.
- Several files that belong together (``vending init``'s machine, catalog and scenario) are all
  written or, if one fails, none is: what was made is removed and what was replaced is put back.
- A generated section of a document (the privacy manifest, the figures, the command reference) is
  replaced between its two marker lines, whole; a document without them is refused, unchanged.
- A file that is replaced (a card image after a top-up or a tap, the emulated motor's state) is
  replaced whole or not at all: a full disk or a kill mid-write leaves what was there, never a card
  with half its blocks.
"""

from __future__ import annotations

import csv
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from firmware.errors import VendingError
from firmware.journal.dex import dex_field

__all__ = [
    "all_or_nothing", "between_markers", "csv_cell", "dex_field", "occupied", "replace_file", "replace_section",
    "write_csv",
]  # fmt: skip

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


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """``path`` holds ``data`` afterwards, or what it held before if anything failed: never a torn mix.

    Written to a temporary file beside it and fsynced, renamed over it (atomic within a directory),
    and the directory fsynced, so that the rename itself survives a power cut. A file that is there
    keeps its mode; ``mode`` is a new one's. The temporary file's name is this write's own: with one
    fixed name, a second writer of the same file removed the first's and the first renamed the
    second's, half written, into place (and the second then failed, its file gone).
    """
    kept = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode), "wb") as handle:
            if kept is not None:
                os.fchmod(handle.fileno(), kept)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
    data = text.encode("utf-8") if isinstance(text, str) else text
    if replace:
        replace_file(target, data, mode)
        return target
    handle = os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_EXCL, mode), "wb")
    try:
        with handle:
            handle.write(data)
    except BaseException:  # a full disk mid-file: the file this call made goes, never left half written
        target.unlink(missing_ok=True)
        raise
    return target


def occupied(directory: Path) -> str | None:
    """Why ``directory`` is no new or empty one for a command to fill: "not a directory" or "holds files".

    None if it is (not there yet, or empty). Such a command writes into it as its own: never into somebody else's files.
    """
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        return "not a directory"
    if directory.is_dir() and any(directory.iterdir()):
        return "holds files"
    return None


@contextmanager
def all_or_nothing(directory: Path) -> Iterator[Callable[..., Path]]:
    """Files written together or not at all: if the block raises, each write it made is undone.

    Yields ``write(relative, text, replace=...)`` (``write_inside`` in ``directory``). Undone before
    the error goes on: a file it made is removed, a file it replaced gets its bytes back, a directory
    it made goes if it is empty. A refusal that says "nothing written" is then true, and running the
    command again does not meet half of its own output.
    """
    undo: list[Callable[[], None]] = []

    def write(relative: str, text: str | bytes, *, replace: bool, mode: int = 0o644) -> Path:
        target = directory / relative
        made = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
        undo.extend(partial(_remove_if_empty, folder) for folder in reversed(made))  # innermost undone first
        before = target.read_bytes() if replace and target.is_file() and not target.is_symlink() else None
        written = write_inside(directory, relative, text, replace=replace, mode=mode)
        undo.append(partial(replace_file, target, before) if before is not None else target.unlink)
        return written

    try:
        yield write
    except BaseException:
        for step in reversed(undo):
            step()
        raise


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (somebody else's files), or gone already
        pass


def between_markers(doc: str, opening: str, closing: str, block: str, where: str = "the document") -> str:
    """``doc`` with what stands between the two marker lines replaced by ``block``; ``VendingError`` without them."""
    head, found, rest = doc.partition(opening)
    _, closed, tail = rest.partition(closing)
    if not found or not closed:
        raise VendingError(f"{where}: no section between {opening} and {closing} to replace; nothing written")
    return f"{head}{opening}\n{block}{closing}{tail}"


def replace_section(path: Path, opening: str, closing: str, block: str) -> None:
    """The section of the document at ``path`` between its markers replaced by ``block``, whole or not at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VendingError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}; nothing written") from None
    replace_file(path, between_markers(text, opening, closing, block, str(path)).encode("utf-8"))
