"""The outage soak in a reduced size (`make soak` runs 10,000 transactions): nothing lost, nothing doubled."""

from __future__ import annotations

from simulator.reliability.soak import run_soak
from tests.support.reporting import require_mosquitto


def test_sales_survive_broker_and_backend_crashes(tmp_path):
    require_mosquitto()
    report = run_soak(transactions=400, machines=3, seed=7, workdir=tmp_path, long_outage_s=3.0)
    assert report.broker_outages >= 1 and report.longest_outage_s >= 3.0
    for machine, figures in report.machines.items():
        assert figures["ok"], (machine, figures)
        assert figures["produced"] > 0 and figures["sales_backend"] > 0
