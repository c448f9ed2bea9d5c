"""Journal entries -> the minimum each party needs (see docs/privacy.md), never a card uid in clear.

Runs inside the journal transaction, so a report exists exactly when its cause does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from firmware.cards.purse import card_day
from firmware.config.machine import MachineSetup
from firmware.domain import JournalEntry, OutboundMessage
from firmware.entries import Alert, DaySummary, DeniedEntry, SaleEntry
from firmware.identity.signing import Identity
from firmware.journal.account_auths import AccountAuth, AccountAuths
from firmware.journal.books import MachineBooks
from firmware.journal.card_steps import CardCounters, CardStep, CardSteps
from firmware.journal.vends import settlement_period
from firmware.policy.rules import evaluate
from firmware.reporting import topics
from firmware.reporting.sealed import seal
from firmware.reporting.signed import canonical

ALERT_PAD = 512  # a guardian alert's signed text, as the envelope escapes it, is padded to this many characters
StockSnapshot = Callable[[], dict[str, dict[str, Any]]]
# Denials that say something about a child's family or money: the vendor gets the count, never who.
FAMILY_AND_MONEY = frozenset(
    {
        "card_not_linked",
        "guardian_limit",
        "period_limit",
        "insufficient_funds",
        "allergen_blocked",
        "offline_limit",
        "card_blocked",
    }
)
DailyTotals = Callable[[str], list[tuple[str, int, int]]]  # local day -> [(uid, amount, count)]
CardTotals = Callable[[list[str]], list[tuple[str, int, int]]]  # local days -> [(uid, amount, count)]
CardStepLines = Callable[[list[str]], list[dict[str, Any]]]  # days -> each card step, by card and counter
PeriodBefore = Callable[[str], list[str]]  # local day -> the previous settlement period's days, once it is over
SaleCard = Callable[[str], tuple[str, datetime | None] | None]  # txn -> (card uid, when bought) of a sale here


def release_window(at: datetime, minutes: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window ``at`` falls in: windows of ``minutes`` from local midnight, the day's last one cut at the next.

    So a window never holds two trading days: a held sale carries its window's start as its time, and the
    vendor counts it in that day, whose summary holds the card's count (simulator/backends/analytics.py).
    """
    day = at.astimezone(zone).date()
    midnight = datetime.combine(day, time(), zone).astimezone(UTC)
    next_midnight = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    size = timedelta(minutes=minutes)
    start = midnight + (at.astimezone(UTC) - midnight) // size * size
    return start, min(start + size, next_midnight)


def local_minute(at: datetime, zone: ZoneInfo) -> str:
    """Local time to the minute: enough to see a rule working, too coarse to time a child's visit."""
    return at.astimezone(zone).replace(second=0, microsecond=0).isoformat(timespec="minutes")


@dataclass
class MqttReporter:
    """Implements the ``Reporter`` port for the vendor and issuer streams."""

    machine: str
    zone: ZoneInfo
    currency: str
    stock: StockSnapshot
    daily_totals: DailyTotals
    low_stock: int
    issuer_public_key: bytes | None = None
    school_public_key: bytes | None = None  # guardian alerts are sealed to the school (controls: school)
    identity: Identity | None = None  # signs the settlement inside the seal: a sealed box says nothing of its sender
    settlement: str = "day_total"
    release_minutes: int = 0  # sales and denials: held and shuffled per window (0: at once)
    location: str = ""  # where the machine stands, in its stock snapshots
    card_totals: CardTotals | None = None  # per_card: the period's lines
    day_refunds: Callable[[str], int] | None = None  # local day -> operators' refunds granted that day
    sale_card: SaleCard | None = None  # payment: card: a sale's card and when it was bought, for the issuer's credit
    period_before: PeriodBefore | None = None
    card_steps: CardStepLines | None = None  # payment: card: the period's card steps by counter
    account_auth: Callable[[str], AccountAuth | None] | None = None  # payment: account: a debit by txn
    card_step: Callable[[str], CardStep | None] | None = None  # payment: card: a step left to the issuer
    _handlers: dict[str, Callable[[JournalEntry], list[OutboundMessage]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # journal entry kind -> its reports; a kind not listed here reaches no party
        self._handlers = {
            "vend_completed": self._on_vend_completed,
            "vend_refunded": self._on_vend_refunded,
            "slot_jammed": self._on_slot_jammed,
            "operator_refund": self._on_operator_refund,
            "credits_given": self._on_credits_given,
            "denied": self._on_denied,
            "restocked": self._snapshot,
            "refilled": self._on_refilled,
            "powered_on": self._snapshot,  # the machine announces itself at boot and after a reconnect
            "link_restored": self._snapshot,
            "door_opened": self._on_door_opened,
            "fault": self._on_fault,
            "command": self._on_command,
            "day_closed": self._on_day_closed,
            "account_step": self._on_account_step,
            "card_step_unresolved": self._on_unresolved_step,
            "card_refund_handed_over": self._on_refund_handed_over,
            "guardian_alert": self._on_guardian_alert,
        }

    def messages_for(self, entry: JournalEntry) -> list[OutboundMessage]:
        handler = self._handlers.get(entry.kind)
        return handler(entry) if handler is not None else []

    # ---- builders -----------------------------------------------------------------------------
    def _vendor(
        self, topic_kind: str, entry: JournalEntry, retain: bool = False, held: bool = False, **body: Any
    ) -> OutboundMessage:
        """A vendor report timed to its minute; ``held`` ones wait for their release window and carry its start."""
        at, release_at = entry.at, None
        if held and self.release_minutes:
            at, release_at = release_window(entry.at, self.release_minutes, self.zone)
        payload = {"machine": self.machine, "time": local_minute(at, self.zone), **body}
        return OutboundMessage(topics.vendor(self.machine, topic_kind), payload, retain, "vendor", release_at)

    def _sale(self, entry: JournalEntry, outcome: str, sale: SaleEntry | None = None) -> OutboundMessage:
        sale = sale or SaleEntry.of(entry.data)
        return self._vendor(
            "sale", entry, held=True, txn=entry.txn_id, currency=self.currency, outcome=outcome, **sale.reported()
        )

    def _stock(self, entry: JournalEntry, held: bool = False, refill: dict[str, int] | None = None) -> OutboundMessage:
        snapshot: dict[str, Any] = {"slots": self.stock()}
        if refill is not None:
            snapshot["refill"] = refill
        if self.location:
            snapshot["location"] = self.location
        return self._vendor("stock", entry, retain=True, held=held, **snapshot)

    def _alert(self, entry: JournalEntry, alert: Alert, held: bool = False) -> OutboundMessage:
        return self._vendor("alert", entry, held=held, **alert.data())

    # ---- one handler per journal entry kind ----------------------------------------------------
    def _on_vend_completed(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A sale; with it, at the low-stock level and at empty, the stock snapshot and an alert.

        Not on every sale below the level: once is news, again is noise. Between snapshots the vendor
        has every sale, so a snapshot per sale would only double the traffic; at low stock and at
        empty the route planner needs the whole picture at once. Both go out with the sale, at the
        end of its release window and timed to it: sent at once they would give the sale's minute
        (docs/privacy.md, "No report gives away the minute").
        """
        sale = SaleEntry.of(entry.data)
        if sale.stock not in (self.low_stock, 0):
            return [self._sale(entry, "vended", sale)]
        return [
            self._sale(entry, "vended", sale),
            self._stock(entry, held=True),
            self._alert(entry, Alert(kind="low_stock", slot=sale.slot, stock=sale.stock), held=True),
        ]

    def _on_slot_jammed(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A slot taken out of sale: a jam alert saying so and the snapshot showing it, with the refund's window."""
        failures, slot = entry.data["failures"], entry.data["slot"]
        detail = f"out of sale: {failures} vends in a row did not drop; enable_slot {slot} once mended"
        alert = Alert(kind="jam", slot=slot, detail=detail)
        return [self._alert(entry, alert, held=True), self._stock(entry, held=True)]

    def _on_vend_refunded(self, entry: JournalEntry) -> list[OutboundMessage]:
        """The refund and its jam alert go out with the window, as the sale would have."""
        jam = Alert(kind="jam", slot=entry.data["slot"])
        return [self._sale(entry, "refunded"), self._alert(entry, jam, held=True)]

    def _on_operator_refund(self, entry: JournalEntry) -> list[OutboundMessage]:
        """An operator's refund of a sale: the vendor's books hear it as a ``credited`` sale of that txn.

        With the purse on the card the issuer gives it, on the first machine the card meets: the card
        and the amount go to it sealed (``credit``), and it lists the credit for its machines.
        """
        sale = SaleEntry.of(entry.data)
        card = self.sale_card(entry.txn_id or "") if self.sale_card is not None else None
        credit = self._credit(entry, *card, sale.price) if card is not None else []
        return [self._sale(entry, "credited"), *credit]

    def _on_refund_handed_over(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A refund owed to a purse card that has not come back here for a week: the issuer lists it (``credit``)."""
        step = self.card_step(entry.txn_id or "") if self.card_step else None
        return self._credit(entry, step.uid, step.bought, step.amount) if step is not None else []

    def _credit(self, entry: JournalEntry, uid: str, bought: datetime | None, amount: int) -> list[OutboundMessage]:
        """A refund to a purse card for the issuer to list, sealed: each (machine, txn) is listed once.

        With the purchase's card day (``bought``), so that the machine that gives it on that day gives
        back the day's allowance too; the day of the refund itself is the settlement's.
        """
        if self.issuer_public_key is None or self.identity is None:
            return []
        day = entry.at.astimezone(self.zone).date().isoformat()
        document = {"machine": self.machine, "txn": entry.txn_id, "card": uid, "amount": amount, "day": day}
        if bought is not None:
            document["bought"] = card_day(bought).isoformat()
        return [self._sealed("credit", document, self.identity, self.issuer_public_key)]

    def _on_credits_given(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A purse card has the issuer's pending credits ``seqs`` (given here or before): its list drops them."""
        if self.issuer_public_key is None or self.identity is None:
            return []
        document = {"machine": self.machine, "card": entry.data["card"], "seqs": list(entry.data["seqs"])}
        return [self._sealed("credit-given", document, self.identity, self.issuer_public_key)]

    def _on_denied(self, entry: JournalEntry) -> list[OutboundMessage]:
        denial = DeniedEntry.of(entry.data)
        if denial.reason in FAMILY_AND_MONEY:  # the vendor learns that it happened, not to which visit
            denial = replace(denial, pseudonym=None, profile=None)
        return [self._vendor("denial", entry, held=True, txn=entry.txn_id, **denial.reported())]

    def _snapshot(self, entry: JournalEntry) -> list[OutboundMessage]:
        """The whole planogram, retained: after a restock, at boot, and when the link comes back."""
        return [self._stock(entry)]

    def _on_refilled(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A technician's visit: the planogram after it, with what the route put in per slot (its pick list)."""
        return [self._stock(entry, refill=dict(entry.data["refill"]))]

    def _on_door_opened(self, entry: JournalEntry) -> list[OutboundMessage]:
        return [self._alert(entry, Alert(kind="door"))]

    def _on_fault(self, entry: JournalEntry) -> list[OutboundMessage]:
        return [self._alert(entry, Alert(kind="fault", detail=str(entry.data.get("detail", ""))))]

    def _on_command(self, entry: JournalEntry) -> list[OutboundMessage]:
        d = entry.data
        result = self._vendor("cmd-result", entry, id=d["id"], command=d["command"], ok=d["ok"], reason=d.get("reason"))
        return [result, self._stock(entry)] if d["ok"] else [result]

    def _on_day_closed(self, entry: JournalEntry) -> list[OutboundMessage]:
        """The vendor's day summary and the issuer's sealed settlement.

        The summary carries the distinct buyers: pseudonyms name visits, so the vendor cannot count them.
        With the most items one card bought, it bounds the buyers in any part of the day: a cell of n
        items had at least n / most buyers, whatever the vendor shares (k-anonymous reports).
        """
        day = entry.data["day"]
        totals = self.daily_totals(day)
        bought = [count for _, _, count in totals]  # items per card
        counts = DaySummary(day=day, buyers=len(totals), sales=sum(bought), most_by_one_buyer=max(bought, default=0))
        summary = OutboundMessage(
            topics.vendor(self.machine, "summary"), {"machine": self.machine, **counts.reported()}, False, "vendor"
        )
        if self.issuer_public_key is None or self.identity is None:
            return [summary]
        seal_to, signer = self.issuer_public_key, self.identity
        document: dict[str, Any] = {"machine": self.machine, "day": day, "currency": self.currency}
        document |= {"amount": sum(a for _, a, _ in totals), "count": counts.sales}
        if self.day_refunds is not None and (refunded := self.day_refunds(day)):
            document["refunded"] = refunded  # operators' refunds granted that day: the issuer pays them back
        if self.settlement == "day_total":
            document["cards"] = sorted(uid for uid, _, _ in totals)
        messages = [summary, self._sealed("settlement", document, signer, seal_to, day=day)]
        per_card = self.settlement == "per_card" and self.card_totals is not None
        period = self.period_before(day) if self.period_before and (per_card or self.card_steps) else []
        steps = self.card_steps(period) if period and self.card_steps else []
        if period and (per_card or steps):  # the last period's lines, at the next one's first close
            totals = self.card_totals(period) if per_card and self.card_totals else []
            lines = [{"uid": uid, "amount": amount, "count": count} for uid, amount, count in totals]
            lines_document: dict[str, Any] = {"machine": self.machine, "week": settlement_period(period[0])}
            lines_document |= {"days": period, "currency": self.currency, "cards": lines}
            if steps:  # the purse on the card: each step by the card's counter, for the issuer's gap checks
                lines_document["steps"] = steps
            messages.append(self._sealed("settlement", lines_document, signer, seal_to, day=day))
        return messages

    def _on_account_step(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A debit's outcome on an issuer-held account (firmware/payments/account.py), sealed to the issuer."""
        auth = self.account_auth(entry.txn_id or "") if self.account_auth else None
        if auth is None or self.issuer_public_key is None or self.identity is None:
            return []
        document = {"machine": self.machine, "txn": auth.txn_id, "card": auth.uid, "amount": auth.amount}
        document |= {"currency": self.currency, "day": auth.local_day, "how": auth.how, "outcome": auth.status}
        return [self._sealed("account", document, self.identity, self.issuer_public_key)]

    def _on_unresolved_step(self, entry: JournalEntry) -> list[OutboundMessage]:
        """A purse step whose fate the card's log no longer shows (payment: card), sealed to the issuer.

        A debit, or a refund's last try; the amount is signed as the card's log signs it (a refund negative).
        """
        step = self.card_step(entry.txn_id or "") if self.card_step else None
        if step is None or step.counter is None or step.before is None or step.at is None:
            return []
        if self.issuer_public_key is None or self.identity is None:
            return []
        signed = step.amount if step.kind == "debit" else -step.amount
        document = {"machine": self.machine, "txn": step.txn_id, "card": step.uid, "counter": step.counter}
        document |= {"amount": signed, "before": step.before, "currency": self.currency}
        document["day"] = step.at.astimezone(self.zone).date().isoformat()
        return [self._sealed("unresolved", document, self.identity, self.issuer_public_key)]

    def _on_guardian_alert(self, entry: JournalEntry) -> list[OutboundMessage]:
        """Sealed to the school, which alone tells the guardian; held to the sale's release window.

        The vendor that carries it cannot tie it to a visit's minute; padded, a low balance and a limit look alike.
        """
        if self.school_public_key is None or self.identity is None:
            return []  # a machine without the school's seal key tells no guardian (node.py refuses to start so)
        document = {"machine": self.machine, **entry.data, "pad": ""}
        # the signed envelope is this text as a JSON string (quotes escaped) beside a header and a signature
        # of fixed length: padding the escaped text to one length makes every alert one size when sealed
        document["pad"] = "." * max(0, ALERT_PAD - len(json.dumps(canonical(document))))
        message = self._sealed(topics.GUARDIAN_ALERT, document, self.identity, self.school_public_key, "school")
        if self.release_minutes:
            message = replace(message, release_at=release_window(entry.at, self.release_minutes, self.zone)[1])
        return [message]

    def _sealed(
        self, kind: str, document: dict[str, Any], signer: Identity, seal_to: bytes, stream: str = "issuer",
        **outer: Any,
    ) -> OutboundMessage:  # fmt: skip
        """Signed by the machine, then sealed: only the receiver (issuer, school) reads it and knows who wrote it.

        ``outer``: what travels beside the seal (a settlement's day, for routing and retention).
        """
        payload = {"machine": self.machine, **outer, "sealed": seal(signer.sign(canonical(document)), seal_to)}
        topic = f"{topics.PREFIXES[stream]}/{self.machine}/{kind}"
        return OutboundMessage(topic, payload, False, stream)


def reporter_for(
    setup: MachineSetup,
    books: MachineBooks,
    issuer_public_key: bytes | None,
    identity: Identity | None = None,
    school_public_key: bytes | None = None,
) -> MqttReporter:
    """The reporter for a machine: its identity, zone and settings, reading stock and totals from its books."""
    config = setup.config
    products = setup.catalog.products
    refused = {  # what the machine's own food rules will not sell, whatever the slot holds
        pid
        for pid, product in products.items()
        if not evaluate(pid, product, config.school.level, setup.rulesets).allowed
    }
    names = {pid: {"zh-TW": product.name.zh_tw, "en": product.name.en} for pid, product in products.items()}
    return MqttReporter(
        machine=config.id,
        zone=config.zone,
        currency=config.currency,
        stock=lambda: {
            s.slot: {
                "product": s.product,
                "name": names[s.product],
                "stock": s.stock,
                "capacity": s.capacity,
                "price": s.price,
                "enabled": s.enabled,
                "sellable": s.enabled and s.stock > 0 and s.product not in refused,
            }
            for s in books.inventory.all()
        },
        daily_totals=books.vends.daily_totals,
        card_totals=books.vends.card_totals,
        day_refunds=books.vends.refunds_on,
        sale_card=_sale_card(books) if config.payment.mode == "card" else None,
        period_before=books.vends.period_before,
        card_steps=CardCounters(books.db).of_days if config.payment.mode == "card" else None,
        account_auth=AccountAuths(books.db).get if config.payment.mode == "account" else None,
        card_step=CardSteps(books.db).get if config.payment.mode == "card" else None,
        low_stock=config.low_stock,
        issuer_public_key=issuer_public_key,
        school_public_key=school_public_key,
        identity=identity,
        settlement=config.settlement,
        release_minutes=config.release_minutes,
        location=config.location,
    )


def _sale_card(books: MachineBooks) -> SaleCard:
    def card(txn_id: str) -> tuple[str, datetime | None] | None:
        record = books.vends.get(txn_id)
        return (record.uid, books.vends.made_at(txn_id)) if record is not None and record.uid else None

    return card
