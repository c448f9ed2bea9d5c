"""The keypad, the door switch and the technician's console as input lines: each input declared once.

``vending serve`` reads them from stdin in place of the buttons. A line is exactly one input or it
changes nothing: ``quit now`` or ``cancel please`` used to quit and cancel (anything after the verb
was ignored), and ``select`` took any text as a slot, so a pasted line became a 5,000-character
"selection" in the journal, on the screen and in a denial report to the vendor. A keypad has keys
for a slot's letter and digits (``firmware.config.machine.SLOT_CODE``), nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from firmware.config.machine import SLOT_CODE
from firmware.errors import VendingError

SHOWN_CHARS = 40  # of a refused line, echoed back: enough to see the typo, never a pasted page


@dataclass(frozen=True)
class Input:
    """One input: its verb and, when it takes one, its argument's name in the help and its rule."""

    verb: str
    argument: str = ""
    accepts: Callable[[str], bool] | None = None
    rule: str = ""

    def usage(self) -> str:
        return f"{self.verb} {self.argument}".strip()


INPUTS = (
    Input(
        "select",
        "SLOT",
        lambda word: SLOT_CODE.fullmatch(word.upper()) is not None,
        "a slot is a letter and one or two digits, e.g. A1",
    ),
    Input("cancel"),
    Input("door", "open|close", lambda word: word in ("open", "close"), "door takes open or close"),
    Input("privacy"),
    Input("status"),
    Input("stock"),
    Input("help"),
    Input("quit"),
)
INPUT_HELP = " | ".join(entry.usage() for entry in INPUTS)
_BY_VERB = {entry.verb: entry for entry in INPUTS}

# Where the lines come from. A service manager (systemd's default, ``docker run`` without -i, a shell's
# background job) gives the machine /dev/null as stdin: its end used to stop the machine at once, so a
# machine without a keypad says so and runs until SIGTERM (a clean stop) or Ctrl-C.
KEYPADS = ("stdin", "none")
KEYPAD_HELP = (
    "`stdin` (the default): keypad and door lines, the machine stops after `quit` or at their end; "
    "`none`: no keypad, the machine runs until SIGTERM (a clean stop) or Ctrl-C, as under a service manager"
)
ENDED_UNREAD = (
    "stdin ended before its first line, so the machine stops as after `quit`; "
    "with no keypad attached (a service manager, a background job) run it with --keypad none"
)


def keypad_lines(keypad: str, stdin: TextIO) -> Iterable[str] | None:
    """The input lines of ``--keypad`` (None: no keypad); VendingError naming the option for another value."""
    if keypad not in KEYPADS:
        raise VendingError(f"--keypad: unknown {keypad[:SHOWN_CHARS]!r}; known: {', '.join(KEYPADS)}")
    return stdin if keypad == "stdin" else None


class NotAnInput(ValueError):
    """A line that is no input, with what to type instead."""


def parse(line: str) -> tuple[str, str] | None:
    """``(verb, argument)`` of ``line`` (argument ``""`` for an input without one), None for a blank line.

    ``NotAnInput`` names the line (its first ``SHOWN_CHARS`` characters) and the inputs there are.
    """
    words = line.split()
    if not words:
        return None
    entry = _BY_VERB.get(words[0])
    shown = repr(line[:SHOWN_CHARS]) + ("..." if len(line) > SHOWN_CHARS else "")
    if entry is None:
        raise NotAnInput(f"unknown input {shown}; {INPUT_HELP}")
    arguments = words[1:]
    if entry.accepts is None:
        if arguments:
            raise NotAnInput(f"{shown}: {entry.verb} takes nothing after it; {INPUT_HELP}")
        return entry.verb, ""
    if len(arguments) != 1 or not entry.accepts(arguments[0]):
        raise NotAnInput(f"{shown}: {entry.rule}; usage: {entry.usage()}")
    return entry.verb, arguments[0]
