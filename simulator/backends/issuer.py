"""The card issuer's backend: opens sealed settlements (per-card daily totals); knows no items, no times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import unseal
from simulator.backends.contract import check
from simulator.backends.service import BackendService, sequence_number
from simulator.backends.store import ISSUER_SCHEMA, Report, SqliteReportStore


class IssuerBackend(BackendService):
    client_id = "issuer-backend"
    subscriptions = ("issuer/v1/+/settlement",)
    stream = "issuer"

    def __init__(self, address: BrokerAddress, db: Path, private_key: bytes, client_id: str | None = None) -> None:
        super().__init__(address, SqliteReportStore(db, ISSUER_SCHEMA), client_id)
        self._key = private_key

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        check(kind, machine, payload)
        seq = sequence_number(payload)
        document = unseal(payload["sealed"], self._key)
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
