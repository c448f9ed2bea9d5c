"""The machine announces itself: a retained stock snapshot at boot and after its link comes back."""

from __future__ import annotations

import json

from tests.support.reporting import attached_runner
from tests.support.waiting import eventually


def snapshots(world) -> list[dict]:
    rows = world.vendor.store.execute("SELECT payload FROM reports WHERE kind = 'stock' ORDER BY seq")
    return [json.loads(payload) for (payload,) in rows]


def test_a_started_machine_reports_its_stock_and_again_after_a_reconnect(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        eventually(lambda: len(snapshots(world)) == 1, what="the stock snapshot at boot, before any sale or restock")
        slots = snapshots(world)[0]["slots"]
        assert slots["A1"]["stock"] == runner.machine.books.inventory.get("A1").stock
        assert set(slots) == set(runner.machine.controller.config.slots)
        runner.machine.set_link(False)
        runner.machine.set_link(True)
        eventually(
            lambda: (runner.machine.tick(), len(snapshots(world)) == 2)[1], what="a snapshot after the reconnect"
        )
        kinds = [k for (k,) in runner.machine.db.conn.execute("SELECT kind FROM journal ORDER BY id")]
        assert kinds.count("powered_on") == 1 and kinds.count("link_restored") == 1


def test_a_link_that_bounced_before_the_first_tick_still_announces_the_machine_again(world, tmp_path):
    """Found by a flaky run: the reconnect was counted as the first connection when no tick came between."""
    with attached_runner(world, tmp_path) as runner:
        eventually(lambda: len(snapshots(world)) == 1, what="the stock snapshot at boot")
        publisher = runner.machine.publisher
        assert publisher is not None
        runner.machine._connects_seen = 0  # as if no tick had run since the boot
        runner.machine.set_link(False)
        runner.machine.set_link(True)
        eventually(lambda: publisher.connects >= 2, what="the reconnect")
        eventually(lambda: (runner.machine.tick(), len(snapshots(world)) == 2)[1], what="a snapshot after it")
