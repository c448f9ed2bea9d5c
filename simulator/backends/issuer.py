"""The card issuer's backend: opens sealed settlements (per-card daily totals); knows no items, no times.

The settlement inside the seal is signed by the machine; it counts only if that signature is the
enrolled key of the machine the topic names (a sealed box alone could come from anyone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware.identity.keyset import Enrolment
from firmware.identity.signing import Identity
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import open_settlement
from simulator.backends.contract import check
from simulator.backends.service import BackendService, sequence_number
from simulator.backends.store import ISSUER_SCHEMA, Report, SqliteReportStore


class IssuerBackend(BackendService):
    client_id = "issuer-backend"
    subscriptions = ("issuer/v1/+/settlement",)
    stream = "issuer"

    def __init__(
        self,
        address: BrokerAddress,
        db: Path,
        seal_key: bytes,
        identity: Identity,
        enrolment: Enrolment,
        client_id: str | None = None,
    ) -> None:
        super().__init__(address, SqliteReportStore(db, ISSUER_SCHEMA), identity, enrolment, client_id)
        self._key = seal_key

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        check(kind, machine, payload)
        seq = sequence_number(payload)
        document = open_settlement(payload["sealed"], self._key, lambda env: self.enrolment.verify(machine, env))
        if document.get("machine") != machine:
            raise ValueError("sealed settlement names another machine")
        if "amount" in document:  # day_total: the machine-day total and which cards took part
            rows: list[tuple[str, tuple[Any, ...]]] = [
                (
                    "INSERT OR REPLACE INTO settlement_days (machine, day, amount, count, cards) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (machine, document["day"], int(document["amount"]), int(document["count"]), len(document["cards"])),
                )
            ]
            rows += [
                (
                    "INSERT OR REPLACE INTO settlements (machine, day, uid, amount, count) "
                    "VALUES (?, ?, ?, NULL, NULL)",
                    (machine, document["day"], uid),
                )
                for uid in document["cards"]
            ]
        else:
            rows = [
                (
                    "INSERT OR REPLACE INTO settlements (machine, day, uid, amount, count) VALUES (?, ?, ?, ?, ?)",
                    (machine, document["day"], card["uid"], int(card["amount"]), int(card["count"])),
                )
                for card in document["cards"]
            ]
        return Report(machine, seq, kind, {"seq": seq, "day": document["day"]}, rows)
