"""What the journal keeps of a sale, a refund, a denial and what an alert says: typed records, each declared once.

The controller journals these (as the entry's JSON data, the same keys as always); the reporter reads
them back typed and sends their *reported* fields, the ones not marked ``MACHINE_ONLY``; the backends'
``sales``, ``denials`` and ``alerts`` views are generated from the same fields
(``firmware/reporting/reports.py``). Adding a field to a report is one field here plus its schema in
docs/asyncapi.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Self, get_type_hints

MACHINE_ONLY = {"reported": False}  # a field the journal keeps and no report carries


@dataclass(frozen=True, kw_only=True)
class Record:
    """A journal entry's data with its fields typed: ``data()`` to journal, ``of(data)`` to read back."""

    def data(self) -> dict[str, Any]:
        """The entry's JSON data: every field, but a machine-only one that is not set."""
        return {
            name: value
            for name, reported in _fields(type(self))
            if (value := getattr(self, name)) is not None or reported
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> Self:
        """Read back what ``data()`` journaled (older entries may lack a field that has a default)."""
        names = _names(cls)
        return cls(**{key: value for key, value in data.items() if key in names})

    def reported(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _ in reported_fields(type(self))}


_REPORTED: dict[type[Record], list[tuple[str, type]]] = {}


_FIELDS: dict[type[Record], tuple[tuple[str, bool], ...]] = {}
_NAMES: dict[type[Record], frozenset[str]] = {}


def _fields(record: type[Record]) -> tuple[tuple[str, bool], ...]:
    """Each field's name and whether reports carry it: read once per record type (a vend journals two)."""
    found = _FIELDS.get(record)
    if found is None:
        found = _FIELDS[record] = tuple((f.name, bool(f.metadata.get("reported", True))) for f in fields(record))
    return found


def _names(record: type[Record]) -> frozenset[str]:
    found = _NAMES.get(record)
    if found is None:
        found = _NAMES[record] = frozenset(name for name, _ in _fields(record))
    return found


def reported_fields(record: type[Record]) -> list[tuple[str, type]]:
    """The fields of ``record`` that reports carry, in declaration order, with their value type (None stripped).

    Asked on every report a vend makes: read once per record type (type hints are slow to resolve).
    """
    found = _REPORTED.get(record)
    if found is None:
        hints = get_type_hints(record)
        found = [(name, _base(hints[name])) for name, reported in _fields(record) if reported]
        _REPORTED[record] = found
    return found


def _base(hint: Any) -> type:
    args = [arg for arg in getattr(hint, "__args__", ()) if arg is not type(None)]
    chosen = args[0] if args else hint
    return chosen if isinstance(chosen, type) else str


@dataclass(frozen=True, kw_only=True)
class SaleEntry(Record):
    """A settled vend (``vend_completed`` or ``vend_refunded``): what was sold, for how much, to which visit."""

    slot: str
    product: str
    price: int
    pseudonym: str | None = None
    profile: str | None = None
    recovered: bool = field(default=False, metadata=MACHINE_ONLY)  # settled by recovery after a power cut
    stock: int | None = field(default=None, metadata=MACHINE_ONLY)  # completed only: the slot's stock after
    capacity: int | None = field(default=None, metadata=MACHINE_ONLY)


@dataclass(frozen=True, kw_only=True)
class DeniedEntry(Record):
    """A refused sale (``denied``): the reason and, unless it is a family or money reason, the visit."""

    reason: str
    slot: str | None = None
    product: str | None = None
    pseudonym: str | None = None
    profile: str | None = None
    price: int | None = field(default=None, metadata=MACHINE_ONLY)
    detail: dict[str, Any] | None = field(default=None, metadata=MACHINE_ONLY)  # what the refusing rule said


@dataclass(frozen=True, kw_only=True)
class Alert(Record):
    """What an alert says: its kind (low_stock, jam, door, fault) and whichever of slot, stock, detail apply."""

    kind: str
    slot: str | None = None
    stock: int | None = None
    detail: str | None = None

    def data(self) -> dict[str, Any]:
        """Only what applies: an alert for the door has no slot."""
        return {key: value for key, value in super().data().items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class DaySummary(Record):
    """A machine-day in counts, made at the day's close (not journaled: the sales it counts are).

    Distinct cards that bought, items sold, and the most items one card bought, from which the vendor
    bounds the distinct buyers in any cell of that day (simulator/backends/analytics.py).
    """

    day: str
    buyers: int
    sales: int
    most_by_one_buyer: int
