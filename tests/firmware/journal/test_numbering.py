"""Report numbering: one seq per report and stream, never reused, never skipped, with no write of its own.

The journal keeps each stream's last seq in memory, read once from the books: the newest waiting
report's, or the highest the publisher recorded when it deleted the acked ones. These hold it to
what the receivers' contiguous-ack walk needs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.domain import JournalEntry, OutboundMessage
from firmware.journal.database import Database
from firmware.journal.ledger import SqliteJournal
from firmware.journal.outbox import Outbox

AT = datetime(2026, 3, 2, 1, tzinfo=UTC)


class OneReportEach:
    """A reporter that makes one vendor report of every entry (the sale's shape is not the point here)."""

    def messages_for(self, entry: JournalEntry) -> list[OutboundMessage]:
        return [OutboundMessage("vending/v1/M/sale", {"n": entry.data["n"]})]


def journal_on(path: Path) -> SqliteJournal:
    return SqliteJournal(Database(path), OneReportEach())


def report(journal: SqliteJournal, n: int) -> None:
    with journal.atomic("journal"):
        journal.append(JournalEntry("vend_completed", AT, f"M-{n}", {"n": n}))


def seqs(journal: SqliteJournal) -> list[int]:
    return [int(seq) for (seq,) in journal.db.conn.execute("SELECT seq FROM outbox ORDER BY seq")]


def test_reports_are_numbered_one_after_another_and_nothing_is_written_to_count_them(tmp_path: Path) -> None:
    journal = journal_on(tmp_path / "machine.db")
    for n in range(1, 4):
        report(journal, n)
    assert seqs(journal) == [1, 2, 3]
    assert journal.last_seq("vendor") == 3
    assert journal.db.conn.execute("SELECT COUNT(*) FROM counters").fetchone()[0] == 0


def test_after_every_report_was_acked_and_deleted_a_restarted_machine_goes_on_from_the_last(tmp_path: Path) -> None:
    journal = journal_on(tmp_path / "machine.db")
    for n in range(1, 4):
        report(journal, n)
    publisher = Outbox.open(journal.db.path)
    assert publisher.delete_acked({"vendor": 3}) == 3
    publisher.close()
    journal.db.close()

    restarted = journal_on(tmp_path / "machine.db")
    assert restarted.last_seq("vendor") == 3, "the deletion recorded how far the numbering had gone"
    report(restarted, 4)
    assert seqs(restarted) == [4]


def test_a_restart_with_reports_still_waiting_numbers_after_the_newest(tmp_path: Path) -> None:
    journal = journal_on(tmp_path / "machine.db")
    for n in range(1, 6):
        report(journal, n)
    publisher = Outbox.open(journal.db.path)
    publisher.delete_acked({"vendor": 2})
    publisher.close()
    journal.db.close()

    restarted = journal_on(tmp_path / "machine.db")
    report(restarted, 6)
    assert seqs(restarted) == [3, 4, 5, 6]


def test_a_rolled_back_report_leaves_no_gap_in_the_numbering(tmp_path: Path) -> None:
    journal = journal_on(tmp_path / "machine.db")
    report(journal, 1)
    with pytest.raises(RuntimeError), journal.atomic("journal"):
        journal.append(JournalEntry("vend_completed", AT, "M-2", {"n": 2}))
        raise RuntimeError("the drop step failed after its report was numbered")
    report(journal, 3)
    assert seqs(journal) == [1, 2], "the third report took the seq the rolled-back one had been given"
    assert [payload for (payload,) in journal.db.conn.execute("SELECT payload FROM outbox ORDER BY seq")][1] == (
        '{"n":3,"seq":2}'
    )


def test_a_state_dir_that_counted_every_report_keeps_its_count(tmp_path: Path) -> None:
    """Before, each report bumped ``seq:<stream>`` in ``counters``; that row is still the floor."""
    db = Database(tmp_path / "machine.db")
    db.conn.execute("INSERT INTO counters (name, value) VALUES ('seq:vendor', 41)")
    db.close()
    journal = journal_on(tmp_path / "machine.db")
    report(journal, 42)
    assert seqs(journal) == [42]
