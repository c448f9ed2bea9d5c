"""The outbox module: reports queued with their cause, read in order per stream, deleted only as acked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.domain import OutboundMessage
from firmware.errors import StorageError
from firmware.journal.database import Database
from firmware.journal.outbox import Outbox

AT = datetime(2026, 3, 2, 1, tzinfo=UTC).isoformat()


def queued(tmp_path: Path, vendor: int, issuer: int) -> Database:
    db = Database(tmp_path / "machine.db")
    outbox = Outbox(db.conn)
    with db.atomic("journal"):
        for seq in range(1, vendor + 1):
            outbox.enqueue(OutboundMessage("vending/v1/M/sale", {"n": seq}), seq, AT)
        for seq in range(1, issuer + 1):
            outbox.enqueue(OutboundMessage("issuer/v1/M/settlement", {"n": seq}, stream="issuer"), seq, AT)
    return db


def test_reports_are_read_in_order_per_stream_and_deleted_only_up_to_the_ack(tmp_path: Path) -> None:
    db = queued(tmp_path, vendor=3, issuer=1)
    publisher = Outbox.open(db.path)
    assert publisher.depth() == 4
    assert publisher.acked_below() == {"vendor": 0, "issuer": 0, "school": 0}
    assert publisher.newest() == {"vendor": 3, "issuer": 1}
    assert [r.seq for r in publisher.after("vendor", 1, limit=10)] == [2, 3]
    assert publisher.after("vendor", 0, limit=1)[0].payload == '{"n":1,"seq":1}'
    assert publisher.delete_acked({"vendor": 2}) == 2
    assert publisher.acked_below() == {"vendor": 2, "issuer": 0, "school": 0}
    assert [topic for topic, _ in publisher.payloads()] == ["vending/v1/M/sale", "issuer/v1/M/settlement"]
    publisher.close()
    db.close()


def test_a_delete_that_fails_midway_rolls_back_and_releases_the_write_lock(tmp_path: Path) -> None:
    """An exception that is not SQLite's own (here an ack seq SQLite cannot bind) must not leave the lock held."""
    db = queued(tmp_path, vendor=3, issuer=2)
    publisher = Outbox.open(db.path)
    with pytest.raises(OverflowError):
        publisher.delete_acked({"vendor": 2, "issuer": 2**63})
    assert not publisher.conn.in_transaction
    assert publisher.depth() == 5, "the vendor rows deleted before the failure came back"
    db.conn.execute("PRAGMA busy_timeout=200")  # a held lock would make the next sale wait, then fail
    try:
        with db.atomic("journal"):
            db.set_meta("next_sale", "written")
    except StorageError as exc:
        pytest.fail(f"the machine could not write after a failed delete: {exc}")
    publisher.close()
    db.close()
