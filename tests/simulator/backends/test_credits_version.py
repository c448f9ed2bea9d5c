"""The credits list's versions only rise, whoever publishes it from the issuer's database and whatever their clock.

A machine keeps only a list newer than the one it holds. The version was the publisher's time in µs, so
a list published by a tool whose clock ran behind the backend's (`vending issuer verdict` on another
host) was older than the one machines held, and thrown away with the credit it listed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from firmware.identity.keyset import HOTLIST, read_shared_key
from firmware.identity.signing import Identity, PublicKey, TrustStore
from firmware.reporting import credits as wire
from simulator.backends.credits import PendingCredits
from simulator.backends.store import SqliteReportStore
from simulator.dev_keys import DevKeys


def test_a_list_published_by_a_clock_behind_is_still_newer_than_the_last(tmp_path: Path) -> None:
    keys = DevKeys(tmp_path / "keys")
    key = read_shared_key(keys.directory, HOTLIST)
    assert key is not None
    identity = Identity.load("issuer", keys.directory / "issuer.key")
    trust = TrustStore([PublicKey.load("issuer", keys.directory / "issuer.pub")])
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    backend_store = SqliteReportStore(tmp_path / "issuer.db", "issuer")
    tool_store = SqliteReportStore(tmp_path / "issuer.db", "issuer")  # the reviewer's tool, another process
    try:
        backend, tool = PendingCredits(backend_store, identity, key), PendingCredits(tool_store, identity, key)
        held = backend.message(now)
        assert held is not None
        machine_holds = wire.read(held[1].encode(), key, trust.verify, 0, now).version

        behind = tool.message(now - timedelta(hours=1))  # the tool's clock an hour slow
        assert behind is not None
        later = wire.read(behind[1].encode(), key, trust.verify, machine_holds, now)  # refused if not newer
        assert later.version == machine_holds + 1
        again = backend.message(now)  # the backend's clock has not moved either
        assert again is not None
        assert wire.read(again[1].encode(), key, trust.verify, later.version, now).version > later.version
    finally:
        backend_store.close()
        tool_store.close()
