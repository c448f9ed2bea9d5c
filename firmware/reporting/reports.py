"""The report kinds a backend keeps a table view of, each derived from one typed record (firmware/entries.py).

A view's columns are the report's envelope (txn, time; a sale's currency and outcome) and then the
record's reported fields, in order (the day's summary: its record's counts alone).
The reporter builds those reports from the same records, and
both backends generate their SQL views from ``REPORT_VIEWS`` (simulator/backends/views.py), so a
field added to a record reaches the wire and both databases without another edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.entries import Alert, DaySummary, DeniedEntry, Record, SaleEntry, reported_fields

Column = tuple[str, type]


@dataclass(frozen=True)
class ReportView:
    name: str  # the view's name in the backend's database
    kind: str  # the report kind (topic) it reads
    envelope: tuple[Column, ...]  # what the reporter adds around the record
    record: type[Record] | None = None

    def columns(self) -> list[Column]:
        return [*self.envelope, *(reported_fields(self.record) if self.record else ())]


REPORT_VIEWS: tuple[ReportView, ...] = (
    ReportView("sales", "sale", (("txn", str), ("time", str), ("currency", str), ("outcome", str)), SaleEntry),
    ReportView("denials", "denial", (("txn", str), ("time", str)), DeniedEntry),
    ReportView("alerts", "alert", (("time", str),), Alert),
    ReportView("summaries", "summary", (), DaySummary),
)
