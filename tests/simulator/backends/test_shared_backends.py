"""Two vendor backend instances share one $share subscription on Mosquitto: the load splits, nothing doubles."""

from __future__ import annotations

from pathlib import Path

from simulator.scenarios.reporting_world import ReportingWorld
from tests.support.reporting import attached_runner, require_mosquitto, sell_many, shared_vendors
from tests.support.waiting import eventually


def test_shared_subscription_splits_load_and_stays_exactly_once(tmp_path: Path, closing):
    require_mosquitto()
    world = closing(ReportingWorld(tmp_path / "world", broker="mosquitto").start())
    instances = shared_vendors(world, tmp_path / "world" / "shared-vendor.db", "vendor", closing)
    received = [0, 0]
    for index, instance in enumerate(instances):
        original = instance.report

        def counting(machine, kind, payload, _original=original, _index=index):
            received[_index] += 1
            return _original(machine, kind, payload)

        instance.report = counting  # type: ignore[method-assign]  # counts, then calls the real method
        assert instance.connected.wait(15)
    with attached_runner(world, tmp_path) as runner:
        sell_many(runner, 40)
        assert world.publisher is not None and world.publisher.flush(30)
        machine_reports = runner.machine.books.journal.last_seq("vendor")
        eventually(lambda: instances[0].store.count() == machine_reports, what="all reports stored")
        sales = instances[0].store.execute("SELECT COUNT(*), COUNT(DISTINCT txn) FROM sales")[0]
        assert sales[0] == sales[1] == runner.result.sales
        assert all(received), f"one instance got nothing: {received}"
