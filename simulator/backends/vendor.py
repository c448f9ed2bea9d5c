"""The vendor's backend: what was sold and refused, by pseudonym; stock, alerts, machine liveness."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Self

from firmware.identity.keyset import Enrolment
from firmware.identity.signing import Identity, PublicKey
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.supervised import SupervisedThread
from simulator.backends.contract import check
from simulator.backends.requests import PAGE_BYTES, PartyRequest
from simulator.backends.service import BackendService, sequence_number
from simulator.backends.store import Report, SqliteReportStore, payload_of

log = logging.getLogger(__name__)
SEQUENCED = ("sale", "denial", "stock", "alert", "cmd-result", "summary")
HEARTBEAT_S = 30.0  # how often a machine beats (OutboxPublisher's default)
MISSED_HEARTBEATS = 3  # a machine not heard for this many beats is marked offline
SILENCE_S = HEARTBEAT_S * MISSED_HEARTBEATS
LIVENESS_CHECK_S = 1.0  # one small query a second


def open_store(db: Path | str) -> Any:
    """SQLite file by default; ``postgresql://...`` for a server shared by several backend processes."""
    if str(db).startswith(("postgresql://", "postgres://")):
        from simulator.backends.postgres_store import PostgresReportStore

        return PostgresReportStore(str(db))
    return SqliteReportStore(Path(db))


class VendorBackend(BackendService):
    client_id = "vendor-backend"
    subscriptions = (
        "vending/v1/+/sale",
        "vending/v1/+/denial",
        "vending/v1/+/stock",
        "vending/v1/+/alert",
        "vending/v1/+/cmd-result",
        "vending/v1/+/summary",
        "vending/v1/+/status",
        "vending/v1/+/heartbeat",
        "vending/v1/+/batch",
    )
    ordered = ("vending/v1/+/status", "vending/v1/+/heartbeat")  # a machine's liveness: last word wins
    stream = "vendor"

    def __init__(
        self,
        address: BrokerAddress,
        db: Path | str,
        identity: Identity,
        enrolment: Enrolment,
        client_id: str | None = None,
        shared_group: str | None = None,
        school: PublicKey | None = None,
        persistent: bool = True,
    ) -> None:
        super().__init__(address, open_store(db), identity, enrolment, client_id, shared_group, school, persistent)
        self._heard: dict[str, float] = {}  # machine -> when this process last heard it (monotonic seconds)
        self._started = time.monotonic()
        self.silence_s = SILENCE_S
        self._stopping = threading.Event()
        self._watch = SupervisedThread(self._watch_liveness, f"{self.client_id}-liveness")

    def start(self) -> Self:
        super().start()
        self._watch.start()
        return self

    def stop(self) -> None:
        self._watch.stop()
        self._stopping.set()
        super().stop()

    def abandon(self) -> None:
        self._watch.stop()
        self._stopping.set()
        super().abandon()

    def _watch_liveness(self) -> None:
        """Every few seconds, machines silent for ``silence_s`` are marked offline (one failure is logged)."""
        while not self._stopping.wait(min(LIVENESS_CHECK_S, self.silence_s / 3)):
            try:
                self.mark_silent(self.silence_s)
            except Exception:  # noqa: BLE001 - liveness is advisory; the next pass tries again
                log.exception("could not mark silent machines offline")

    def heard_lately(self, silence_s: float) -> dict[str, bool]:
        """Per machine heard since this process started: whether its last word came within ``silence_s``.

        The heartbeat's own time is the machine's clock (virtual in a scenario), so liveness is judged
        by when the message arrived here.
        """
        now = time.monotonic()
        return {machine: now - at <= silence_s for machine, at in self._heard.items()}

    def answer(self, request: PartyRequest) -> dict[str, Any]:
        """A slice of the vendor's records, the same whoever the school is asking for; or an erasure.

        ``days``: the days held of a machine; ``access``: one page of a machine-day's sales and
        refusals; ``erase``: the records the school matched, destroyed before the answer goes. An erased
        record stays a tombstone (machine, seq, digest) so a redelivery of it is never stored again;
        the machine's own counts (``summary``) never named anyone and stay.
        """
        if request.kind == "days":
            return {"days": self.store.days_held(request.machine)}
        if request.kind == "erase":
            erased = self.store.erase_records(request.machine, request.seqs)
            return {"erased": [{"machine": request.machine, "seq": seq, "kind": kind} for seq, kind in erased]}
        assert request.day is not None
        rows, after = self.store.records_page(request.machine, request.day, request.after, PAGE_BYTES)
        records = [{"kind": kind, "seq": seq, "payload": payload_of(payload)} for seq, kind, payload in rows]
        return {"records": records, "next": after}

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        check(kind, machine, payload)
        self._heard[machine] = time.monotonic()
        if kind in SEQUENCED:
            return Report(machine, sequence_number(payload), kind, payload)
        if kind == "status":
            self._machine(machine, state=str(payload.get("state", "unknown")))
        elif kind == "heartbeat":
            self._machine(
                machine, state="online", last_heartbeat=str(payload.get("time")), outbox=payload.get("outbox")
            )
        return None

    def _machine(self, machine: str, **fields: Any) -> None:
        current = self.store.execute("SELECT state, last_heartbeat, outbox FROM machines WHERE machine = ?", (machine,))
        state, beat, outbox = current[0] if current else ("unknown", None, None)
        self.store.upsert_machine(
            machine, fields.get("state", state), fields.get("last_heartbeat", beat), fields.get("outbox", outbox)
        )

    def mark_silent(self, silence_s: float) -> list[str]:
        """Machines the table has online that this process has not heard for ``silence_s``: offline now.

        Works on any broker (amqtt sends no Will on keep-alive expiry). Judged by arrival here, not
        by the heartbeat's own time (a scenario's clock is virtual); a machine not heard since this
        backend started counts from its start.
        """
        now = time.monotonic()
        stale = []
        for (machine,) in self.store.execute("SELECT machine FROM machines WHERE state = 'online'"):
            if now - self._heard.get(machine, self._started) > silence_s:
                stale.append(machine)
                self._machine(machine, state="offline")
        return stale
