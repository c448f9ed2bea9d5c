"""The backends' table views of reports, generated for SQLite and PostgreSQL from ``REPORT_VIEWS``.

One definition (firmware/reporting/reports.py, from the typed records in firmware/entries.py) gives
both dialects' ``sales``, ``denials`` and ``alerts`` views, so the two stores cannot drift apart.
"""

from __future__ import annotations

import textwrap

from firmware.reporting.reports import REPORT_VIEWS, Column, ReportView


def _sqlite(column: Column) -> str:
    name, _ = column
    return f"json_extract(payload, '$.{name}') AS {name}"


def _postgres(column: Column) -> str:
    name, kind = column
    text = f"payload->>'{name}'"
    return f"({text})::int AS {name}" if kind is int else f"{text} AS {name}"


def view_sql(dialect: str) -> str:
    """``CREATE VIEW`` statements for every report view; ``dialect`` is ``sqlite`` or ``postgres``."""
    return "".join(_view(view, dialect) for view in REPORT_VIEWS)


def _view(view: ReportView, dialect: str) -> str:
    """One view, wrapped to be read (docs/backends.md shows the schema as the code creates it)."""
    render = _sqlite if dialect == "sqlite" else _postgres
    columns = ", ".join(["machine", "seq", *(render(column) for column in view.columns())])
    select = textwrap.fill(f"SELECT {columns}", width=110, initial_indent="    ", subsequent_indent="           ")
    create = "CREATE VIEW IF NOT EXISTS" if dialect == "sqlite" else "CREATE OR REPLACE VIEW"
    return f"{create} {view.name} AS\n{select}\n    FROM reports WHERE kind = '{view.kind}';\n"
