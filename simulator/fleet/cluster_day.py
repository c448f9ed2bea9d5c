"""A fleet's day on a RabbitMQ cluster with two instances of each backend, and faults on purpose mid-day.

``vending fleet --broker rabbitmq-cluster`` runs the vendor's and the issuer's backends as two
competing consumers each (their parties' quorum queues). With ``--kill-mid-day``, once half the
machines have run, one broker node is killed (SIGKILL) together with one vendor and one issuer
instance (their unacknowledged deliveries go back to the queues); ``down_s`` later the node is
started again on its data and the instances come back. The run then checks what an SRE would:
every report and settlement stored once, every machine's outbox empty.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.fleet.model import fleet_machine_id
from simulator.scenarios.reporting_world import ReportingWorld


@dataclass
class ClusterDay:
    """The second instances, the mid-day faults, and what they did."""

    world: ReportingWorld
    machines: int
    kill_mid_day: bool = False
    down_s: float = 10.0
    node: int = 1  # the node to kill; the first is the one every machine tries first (most sessions move)
    node_kills: int = 0
    backend_kills: int = 0
    extra: list[Any] = field(default_factory=list)
    _fault: threading.Thread | None = None

    def prepare(self) -> None:
        """Every machine enrolled (one import), and a second vendor and issuer instance consuming."""
        assert self.world.cluster is not None
        self.world.cluster.enrol([fleet_machine_id(index) for index in range(self.machines)])
        self.extra = [
            self.world.new_vendor(identity="vendor-2").start(),
            self.world.new_issuer("issuer-2").start(),
        ]
        for backend in self.extra:
            if not backend.subscribed.wait(60):
                raise RuntimeError(f"{backend.client_id} could not consume from the cluster")

    def progress(self, machines_done: int) -> None:
        """Called as machines finish: the faults start once half of them have."""
        if self.kill_mid_day and self._fault is None and machines_done * 2 >= self.machines:
            self._fault = threading.Thread(target=self._faults, name="vending-cluster-faults", daemon=True)
            self._fault.start()

    def _faults(self) -> None:
        cluster = self.world.cluster
        assert cluster is not None
        cluster.kill(self.node)
        self.node_kills += 1
        self.world.vendor_down()
        self.world.issuer_down()
        self.backend_kills += 2
        time.sleep(self.down_s)
        cluster.revive(self.node)
        self.world.vendor_up()
        self.world.issuer_up()

    def finish(self) -> None:
        """Wait for a fault still in progress (the node back, the instances back) before counting."""
        if self._fault is not None:
            self._fault.join(timeout=300)

    def rearm(self, node: int) -> None:
        """Another day, another node to kill at its half (the soak: ``bench/cluster.py --soak``)."""
        self.finish()
        self._fault, self.node = None, node

    def stop(self) -> None:
        for backend in self.extra:
            backend.stop()

    def stored_twice(self) -> int:
        """Rows sharing a (machine, seq) in the vendor's and the issuer's stores: what exactly-once keeps at 0."""
        assert self.world.vendor is not None and self.world.issuer is not None
        twice = "SELECT COUNT(*) - COUNT(DISTINCT machine || ':' || seq) FROM reports"
        return sum(int(backend.store.execute(twice)[0][0]) for backend in (self.world.vendor, self.world.issuer))

    def summary(self) -> dict[str, int]:
        """What the faults did and what exactly-once kept: the run's figures beside the fleet's own."""
        return {"node_kills": self.node_kills, "backend_kills": self.backend_kills, "duplicates": self.stored_twice()}
