"""The machine's console: event lines for humans (one per event) or machines (``--json``), its screen, its logs."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, tzinfo
from typing import Any, TextIO

from firmware.errors import VendingError
from firmware.messages import Message


def _value(value: Any) -> str:
    if isinstance(value, str) and (" " in value or not value):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


class EventPrinter:
    """Prints each controller event; never receives a uid (the controller only emits pseudonyms)."""

    def __init__(self, as_json: bool = False, stream: TextIO | None = None, zone: tzinfo | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.zone = zone  # the machine's: times print as its local time with the offset, never as UTC

    def __call__(self, at: datetime, name: str, details: dict[str, Any]) -> None:
        if self.zone is not None:
            at = at.astimezone(self.zone)
        if self.as_json:
            record = {"t": at.isoformat(), "event": name, **details}
            self.stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            return
        if name == "display":
            text = f"{details.get('zh')} / {details.get('en')}"
            self.stream.write(f"{at.isoformat()}  {name:<10} {text}\n")
            return
        fields = " ".join(f"{k}={_value(v)}" for k, v in details.items() if v is not None)
        self.stream.write(f"{at.isoformat()}  {name:<10} {fields}\n".rstrip() + "\n")


class ConsoleDisplay:
    """The ``Display`` port on a console: the current message (the event printer prints each one as it comes)."""

    def __init__(self) -> None:
        self.current: Message | None = None

    def show(self, message: Message) -> None:
        self.current = message


LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class ZonedFormatter(logging.Formatter):
    """Log times as the event lines print theirs: ISO 8601 with the offset, in the machine's zone once known.

    Logs were stamped in the host's zone (UTC on a server) beside event lines in the machine's, so
    one moment read as 22:38 on stderr and 06:38 on stdout.
    """

    zone: tzinfo | None = None  # the host's until ``log_times_in`` names the machine's

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return datetime.fromtimestamp(record.created, self.zone).astimezone(self.zone).isoformat(timespec="seconds")


LOG_FORMATTER = ZonedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def log_times_in(zone: tzinfo) -> None:
    """Stamp log lines in ``zone`` (the machine's, as its event lines) from now on."""
    LOG_FORMATTER.zone = zone


def setup_logging(level: str | None, verbose: bool, quiet: bool) -> None:
    """Quiet by default (warnings and errors); libraries (transitions, paho, amqtt) stay at WARNING unless -v."""
    if level is not None and level.lower() not in LOG_LEVELS:
        raise VendingError(f"--log-level: expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    root = (
        LOG_LEVELS[level.lower()] if level else logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    )
    logging.basicConfig(level=root, stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # one time format on the console (ZonedFormatter)
        handler.setFormatter(LOG_FORMATTER)
    if not verbose and root > logging.DEBUG:
        for library in ("transitions", "paho", "amqtt", "asyncio"):
            logging.getLogger(library).setLevel(max(root, logging.WARNING))
