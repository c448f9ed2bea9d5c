"""The card issuer's backend: opens sealed settlements (day totals; per card by week); knows no items, no times.

The settlement inside the seal is signed by the machine; it counts only if that signature is the
enrolled key of the machine the topic names (a sealed box alone could come from anyone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware.identity.keyset import Enrolment
from firmware.identity.pseudonym import normalise_uid
from firmware.identity.signing import Identity, PublicKey
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import open_settlement, unseal
from firmware.reporting.wire import WireError
from simulator.backends.contract import check
from simulator.backends.requests import PartyRequest
from simulator.backends.service import BackendService, sequence_number
from simulator.backends.store import ISSUER_SCHEMA, Report, SqliteReportStore


class IssuerBackend(BackendService):
    client_id = "issuer-backend"
    subscriptions = ("issuer/v1/+/settlement", "issuer/v1/+/batch")
    stream = "issuer"

    def __init__(
        self,
        address: BrokerAddress,
        db: Path,
        seal_key: bytes,
        identity: Identity,
        enrolment: Enrolment,
        client_id: str | None = None,
        school: PublicKey | None = None,
        persistent: bool = True,
    ) -> None:
        store = SqliteReportStore(db, ISSUER_SCHEMA)
        super().__init__(address, store, identity, enrolment, client_id, school=school, persistent=persistent)
        self._key = seal_key

    def answer(self, request: PartyRequest) -> dict[str, Any]:
        """The machine-days the sealed card settled on, with its amounts where the settlement told them.

        The answer names no card: it goes back over the broker, and the school knows which card it asked for.
        """
        assert request.sealed is not None
        try:
            inside = unseal(request.sealed, self._key)
        except Exception:  # noqa: BLE001 - a box that does not open is refused, whatever the reason
            raise WireError("sealed: not sealed to this issuer") from None
        uid = inside.get("uid") if isinstance(inside, dict) and set(inside) == {"uid"} else None
        if not isinstance(uid, str) or not 4 <= len(uid) <= 40:
            raise WireError('sealed: expected {"uid": "<card uid>"}')
        card = normalise_uid(uid)
        days = self.store.execute("SELECT machine, day FROM settlements WHERE uid = ? ORDER BY day, machine", (card,))
        weeks = self.store.execute(
            "SELECT machine, week, days, amount, count FROM settlement_weeks WHERE uid = ? ORDER BY week, machine",
            (card,),
        )
        return {
            "days": [{"machine": m, "day": d} for m, d in days],
            "weeks": [
                {"machine": m, "week": w, "days": ds.split(","), "amount": a, "count": c} for m, w, ds, a, c in weeks
            ],
        }

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        check(kind, machine, payload)
        seq = sequence_number(payload)
        document = open_settlement(payload["sealed"], self._key, lambda env: self.enrolment.verify(machine, env))
        if document.get("machine") != machine:
            raise ValueError("sealed settlement names another machine")
        if "week" in document:  # per_card: each card's total over a trading week (docs/privacy.md)
            rows: list[tuple[str, tuple[Any, ...]]] = [
                (
                    "INSERT OR REPLACE INTO settlement_weeks (machine, week, days, uid, amount, count) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (machine, document["week"], ",".join(document["days"]), card["uid"], card["amount"], card["count"]),
                )
                for card in document["cards"]
            ]
            return Report(machine, seq, kind, {"seq": seq, "day": payload["day"], "week": document["week"]}, rows)
        cards = document.get("cards")  # day_total: which cards took part; per_card: not told per day
        rows = [
            (
                "INSERT OR REPLACE INTO settlement_days (machine, day, amount, count, cards) VALUES (?, ?, ?, ?, ?)",
                (machine, document["day"], int(document["amount"]), int(document["count"]), len(cards or [])),
            )
        ]
        rows += [
            (
                "INSERT OR REPLACE INTO settlements (machine, day, uid, amount, count) VALUES (?, ?, ?, NULL, NULL)",
                (machine, document["day"], uid),
            )
            for uid in cards or []
        ]
        return Report(machine, seq, kind, {"seq": seq, "day": document["day"]}, rows)
