"""The card issuer's backend: opens sealed settlements (day totals; per card by week); knows no items, no times.

The settlement inside the seal is signed by the machine; it counts only if that signature is the
enrolled key of the machine the topic names (a sealed box alone could come from anyone).
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware.cards.purse import Sam
from firmware.identity.keyset import Enrolment
from firmware.identity.signing import Identity, PublicKey
from firmware.reporting import topics
from firmware.reporting.authorisation import MAX_AUTH_BYTES, AuthRequest, compose_answer, read_request
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.sealed import open_settlement, seal
from firmware.reporting.wire import WireError
from simulator.backends import purse_audit
from simulator.backends.accounts import AccountBook
from simulator.backends.card_counters import CounterIncident, UnresolvedDebit
from simulator.backends.contract import check
from simulator.backends.credits import PendingCredits
from simulator.backends.requests import PartyRequest
from simulator.backends.service import BackendService, sequence_number
from simulator.backends.signer import ForeignSigner, pin
from simulator.backends.store import Report, SqliteReportStore

log = logging.getLogger(__name__)


class IssuerBackend(BackendService):
    client_id = "issuer-backend"
    subscriptions = (
        "issuer/v1/+/settlement",
        "issuer/v1/+/batch",
        "issuer/v1/+/account",
        "issuer/v1/+/unresolved",
        "issuer/v1/+/auth",
        "issuer/v1/+/credit",
        "issuer/v1/+/credit-given",
    )
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
        majority_age: int = 18,
        hotlist_key: bytes | None = None,
    ) -> None:
        store = SqliteReportStore(db, "issuer")
        try:
            pin(store, identity)  # what it signs here (answers, credits lists) is under the issuer's one key
        except ForeignSigner:
            store.close()
            raise
        super().__init__(address, store, identity, enrolment, client_id, school=school, persistent=persistent)
        self._key = seal_key
        self.credits = PendingCredits(store, identity, hotlist_key)  # operators' refunds to purse cards
        self.accounts = AccountBook(store, majority_age)
        self.authorisations = 0  # requests answered

    def stored(self, reports: list[Report]) -> None:
        """The credits list goes out again when a batch changed it.

        A refund, a card's having it, or a step left unresolved that the steps now decide (looked at on
        every batch that brings either, so a verdict the backend died before acting on is acted on with
        the next).
        """
        kinds = {report.kind for report in reports}
        listed = self.refund_unresolved() if kinds & {"unresolved", "settlement"} else 0
        if listed or kinds & {"credit", "credit-given"}:
            found = self.credits.message(datetime.now(UTC))
            if found is not None:
                self.client.publish(*found, qos=1, retain=True)

    # ---- accounts: the machines' authorisation requests (firmware/reporting/authorisation.py) -----
    def take_call(self, topic: str, payload: bytes) -> bool:
        parsed = topics.split(topic)
        if parsed is None or parsed[2] != topics.AUTH:
            return False
        machine = parsed[1]
        try:
            request = read_request(payload, machine, lambda env: self.enrolment.verify(machine, env), self._key)
        except WireError as exc:
            self.incident(machine, topic, str(exc), bytes(payload[:MAX_AUTH_BYTES]))
            return True
        self.queue_call(request)
        return True

    def call(self, call: object) -> None:
        if not isinstance(call, AuthRequest):
            super().call(call)
            return
        try:
            check("auth-document", call.machine, call.inside)  # what the machine sealed, as the contract says
            answer = self.accounts.decide(call)
        except (WireError, ValueError) as exc:  # a sealed inside the machine signed but got wrong: an incident
            self.incident(call.machine, topics.issuer(call.machine, topics.AUTH), str(exc))
            return
        except Exception:  # noqa: BLE001 - one bad request never stops the backend; the machine times out
            self.errors += 1
            log.exception("could not decide an authorisation request")
            return
        wire = compose_answer(self.identity, call, answer)
        self.client.publish(topics.issuer(call.machine, topics.AUTH_ANSWER), wire, qos=0)
        self.authorisations += 1

    def answer(self, request: PartyRequest) -> dict[str, Any]:
        """The days a machine settled, or every settlement line of one machine-day, sealed to the school.

        The same slice whoever the school is asking for, so the issuer learns nothing of who asked. The
        lines name cards, so they go back sealed to the one-time key in the request (``reply_to``):
        the broker, and the vendor that may run it, read nothing.
        """
        machine = request.machine
        if request.kind == "days":
            rows = self.store.execute(
                "SELECT day FROM settlement_days WHERE machine = ? UNION SELECT day FROM settlements WHERE machine = ? "
                "UNION SELECT substr(days, 1, 10) FROM settlement_weeks WHERE machine = ? ORDER BY 1",
                (machine, machine, machine),
            )
            return {"days": [str(day) for (day,) in rows]}
        assert request.day is not None and request.reply_to is not None
        cards = self.store.execute(
            "SELECT uid FROM settlements WHERE machine = ? AND day = ? ORDER BY uid", (machine, request.day)
        )
        weeks = self.store.execute(
            "SELECT week, days, uid, amount, count FROM settlement_weeks WHERE machine = ? AND substr(days, 1, 10) = ? "
            "ORDER BY week, uid",
            (machine, request.day),
        )
        inside = {
            "machine": machine,
            "day": request.day,
            "cards": [str(uid) for (uid,) in cards],
            "weeks": [
                {"week": w, "days": ds.split(","), "uid": uid, "amount": a, "count": c} for w, ds, uid, a, c in weeks
            ],
        }
        try:
            reply_key = base64.b64decode(request.reply_to, validate=True)
            return {"sealed": seal(inside, reply_key)}
        except Exception:  # noqa: BLE001 - a key that is not a key is refused, whatever the reason
            raise WireError("reply_to: not an X25519 public key") from None

    def counter_incidents(self, sam: Sam | None = None) -> list[CounterIncident]:
        """Purse cards' counters checked across every machine that settled them (``card_counters``)."""
        return purse_audit.counter_incidents(self.store, sam)

    def unresolved_debits(self) -> list[UnresolvedDebit]:
        """The purse steps machines left to the issuer, each decided against the next step settled."""
        return [step for step, _ in purse_audit.left_steps(self.store)]

    def refund_unresolved(self) -> int:
        """Act on each unresolved step the settled steps now decide, once: what the card is owed is listed.

        A debit made with nothing vended, or a refund's try never made, becomes a credit on the list any
        machine of the school gives at the card's next tap. Only steps not decided before are read.
        """
        left = purse_audit.left_steps(self.store, undecided_only=True)
        decided = [(step, day) for step, day in left if step.verdict != "unknown"]
        if not decided:
            return 0
        listed = self.credits.owe_decided(decided)
        log.info("decided %d unresolved step(s); %d credit(s) listed for cards", len(decided), listed)
        return listed

    def report(self, machine: str, kind: str, payload: dict[str, Any]) -> Report | None:
        check(kind, machine, payload)
        seq = sequence_number(payload)
        document = open_settlement(payload["sealed"], self._key, lambda env: self.enrolment.verify(machine, env))
        if kind == "unresolved":  # a purse debit a machine could not settle itself (unresolved_debits)
            check("unresolved-document", machine, document)
            keys = ("txn", "card", "counter", "amount", "before", "day")
            row = (
                "INSERT OR IGNORE INTO card_unresolved (machine, txn, uid, counter, amount, before, day) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (machine, *(document[key] for key in keys)),
            )
            return Report(machine, seq, kind, {"seq": seq, "txn": document["txn"]}, [row])
        if kind in ("credit", "credit-given"):  # an operator's refund to a purse card, listed until a card has it
            check(f"{kind}-document", machine, document)
            return Report(machine, seq, kind, {"seq": seq}, self.credits.rows(kind, document))
        if kind == "account":  # a debit's outcome on an issuer-held account
            check("account-document", machine, document)
            outcome = self.accounts.outcome_rows(machine, document)
            return Report(machine, seq, kind, {"seq": seq, "txn": document["txn"]}, outcome)
        check("settlement-document", machine, document)  # the inside too: shape, types, the machine it names
        if "week" in document:  # per_card: each card's total over a four-week period (docs/privacy.md)
            rows: list[tuple[str, tuple[Any, ...]]] = [
                (
                    "INSERT OR REPLACE INTO settlement_weeks (machine, week, days, uid, amount, count) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (machine, document["week"], ",".join(document["days"]), card["uid"], card["amount"], card["count"]),
                )
                for card in document["cards"]
            ]
            rows += [
                (
                    "INSERT OR REPLACE INTO card_steps (uid, counter, machine, amount, balance, mac, week) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        step["uid"],
                        step["counter"],
                        machine,
                        step["amount"],
                        step["balance"],
                        step["mac"],
                        document["week"],
                    ),
                )
                for step in document.get("steps", [])
            ]
            return Report(machine, seq, kind, {"seq": seq, "day": payload["day"], "week": document["week"]}, rows)
        cards = document.get("cards")  # day_total: which cards took part; per_card: not told per day
        rows = [
            (
                "INSERT OR REPLACE INTO settlement_days (machine, day, amount, count, cards, refunded) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    machine,
                    document["day"],
                    int(document["amount"]),
                    int(document["count"]),
                    len(cards or []),
                    int(document.get("refunded", 0)),
                ),  # fmt: skip
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
