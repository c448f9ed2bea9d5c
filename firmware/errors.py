"""Errors that carry where bad input came from, so users can fix the right line."""

from __future__ import annotations

# Exit statuses shared by ``python -m firmware`` and ``vending`` (simulator/cli/exits.py documents the full list)
EXIT_OK = 0
EXIT_INPUT = 2  # invalid input or environment: the message names the file, field or line, or the option, and why
EXIT_INTERNAL = 70  # a bug (sysexits' EX_SOFTWARE): the traceback follows the message; please report it
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class VendingError(Exception):
    """Base class for the project's own errors."""


class InputError(VendingError):
    """Bad input from a file or a wire: names the source, the line, the field path and the reason.

    The rendered form ``FILE:LINE: field.path: reason`` is a contract (tests compare it verbatim).
    """

    def __init__(self, source: str, line: int | None, path: str, reason: str) -> None:
        self.source = source
        self.line = line
        self.path = path
        self.reason = reason
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.reason}"


class UnknownDriverError(VendingError):
    """A plugin name that is not in its registry; the message lists the known names."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}")
        self.name = name
        self.known = known


class StorageError(VendingError):
    """The durable store cannot be written (disk full, read-only): sales must stop."""


class SettlementError(VendingError):
    """A vend settled twice, or a session step run without the card or selection it needs.

    These guard the money path; they are raised (never ``assert``-ed, which ``python -O`` strips)
    and mean a bug, so the step's transaction rolls back and nothing is half-written.
    """


class CardNotRead(VendingError):
    """The card left the reader before the machine could read it (a quick tap): nothing happened.

    Not a card the machine refuses: the customer is asked to hold it on the reader, and the session,
    with its selection, waits for the next tap.
    """


class PaymentUnconfirmed(VendingError):
    """The money step did not confirm (the card left mid-debit): nothing may be vended on it.

    The intent stays journaled; the card's next tap shows whether the debit was made, and a debit
    made is given back (docs/payments.md, tearing). An issuer that declines an account's debit says
    why: ``reason`` is then a denial reason the display shows (``firmware.messages``), with its
    ``details``; without one the card left (``card_removed``).
    """

    def __init__(self, message: str, reason: str = "card_removed", details: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details or {}


# a path given as "" (an unset shell variable): pathlib reads it as '.', so every command line refuses it
EMPTY_PATH = "an empty path: give the path, or '.' for the current directory"
