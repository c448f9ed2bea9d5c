"""Event lines for humans (one per event) or for machines (``--json``, one object per line)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from typing import Any, TextIO


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
