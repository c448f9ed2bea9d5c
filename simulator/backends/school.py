"""The school's backend for guardian alerts: opens what machines sealed to it, stores each exactly once.

Machines that take the school's controls (``controls: school``) seal an alert to the school when a sale
takes a card below the guardian's low-balance threshold or a guardian's limit refuses one
(firmware/journal/alerts.py). Only the school can open it, and only the school can tell whose card it
is: the alert names the card as the school's controls do. The school's notification system reads
``guardian_alerts`` (``vending school alerts`` lists them by student); the vendor that carries them
sees sealed blobs of one size, released with the sales of their window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from firmware.identity.keyset import Enrolment
from firmware.identity.signing import Identity
from firmware.reporting import topics
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import open_settlement
from simulator.backends.contract import check
from simulator.backends.service import BackendService, sequence_number
from simulator.backends.store import Report, SqliteReportStore

HEAD = ("machine", "card", "alert", "day", "pad")


class SchoolBackend(BackendService):
    client_id = "school-backend"
    subscriptions = (f"school/v1/+/{topics.GUARDIAN_ALERT}", "school/v1/+/batch")
    stream = "school"

    def __init__(self, address: BrokerAddress, db: Path, seal_key: bytes, identity: Identity, enrolment: Enrolment,
                 client_id: str | None = None, persistent: bool = True) -> None:  # fmt: skip
        super().__init__(address, SqliteReportStore(db, "school"), identity, enrolment, client_id,
                         persistent=persistent)  # fmt: skip
        self._key = seal_key

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        check(kind, machine, payload)
        seq = sequence_number(payload)
        document = open_settlement(payload["sealed"], self._key, lambda env: self.enrolment.verify(machine, env))
        check("guardian-alert-document", machine, document)
        facts = json.dumps({key: value for key, value in document.items() if key not in HEAD}, sort_keys=True)
        row = (
            "INSERT OR IGNORE INTO guardian_alerts (machine, seq, card, alert, day, facts) VALUES (?, ?, ?, ?, ?, ?)",
            (machine, seq, document["card"], document["alert"], document["day"], facts),
        )
        return Report(machine, seq, kind, {"seq": seq}, [row])
