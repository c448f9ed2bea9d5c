"""What the operator's dashboard shows, read from the vendor backend's store: aggregates, never a person.

Every figure here is something the vendor already holds and may use to run its machines: liveness,
the last stock each machine reported, alerts, and the day's sales counted by hour and by product.
No pseudonym, profile or single sale is ever put on the page (docs/dashboard.md says why).

Stock is the machine's own last snapshot (sent after every restock or command and when a sale brings
a slot to its low-stock level), shown with the time it was taken. The dashboard does not subtract
sales from it: sales wait for their release window while snapshots do not, so a subtraction would
count some sales twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from firmware.app.command_set import COMMANDS
from simulator.backends.store import payload_of

LOW_STOCK_SHARE = 0.2  # a slot at or under a fifth of its capacity is highlighted (the machine alerts on its own level)
ALERT_LIMIT = 50
REASON_LIMIT = 160  # a refusal's reason as the page shows it


class Store(Protocol):
    """The vendor backend's store (SQLite or PostgreSQL): ``?`` placeholders, JSON fields by name."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def json_field(self, name: str) -> str: ...

    def on_day(self) -> str: ...


@dataclass(frozen=True)
class MachineRow:
    machine: str
    state: str  # online, offline, silent (online by its last word, but no heartbeat heard lately), unknown
    last_seen: str | None  # in the machine's own zone (the offset its reports carry)
    outbox: int | None
    snapshot_time: str | None
    last_sale: str | None = None  # of the board's day
    revenue: int = 0  # of the board's day: vended, less what operators refunded that day
    location: str = ""  # as the machine's last stock snapshot gives it


@dataclass(frozen=True)
class SlotRow:
    machine: str
    slot: str
    product: str
    stock: int
    capacity: int
    price: int
    enabled: bool
    name_zh: str = ""  # the product's names from the machine's catalog ("" from a snapshot sent before names)
    name_en: str = ""
    sellable: bool = True  # false: disabled, empty, or refused by the machine's food rules

    @property
    def low(self) -> bool:
        return self.stock <= self.capacity * LOW_STOCK_SHARE

    @property
    def why_not(self) -> str:
        """Why the slot cannot sell, for the page; empty when it can."""
        if self.sellable:
            return ""
        if not self.enabled:
            return "disabled"
        return "empty" if self.stock == 0 else "refused by the food rules"

    @property
    def fillable(self) -> bool:
        """A restock button makes sense: room in the slot, and the machine would sell what goes in."""
        return self.stock < self.capacity and self.enabled and (self.sellable or self.stock == 0)


@dataclass(frozen=True)
class AlertRow:
    machine: str
    seq: int
    time: str
    kind: str
    slot: str | None
    detail: str


@dataclass(frozen=True)
class CommandRow:
    machine: str
    time: str
    command: str
    ok: bool
    reason: str | None


@dataclass
class Board:
    """One consistent reading of the store, turned into page fragments by the app."""

    day: str | None
    machines: list[MachineRow] = field(default_factory=list)
    slots: list[SlotRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    commands: list[CommandRow] = field(default_factory=list)
    items_by_hour: dict[str, int] = field(default_factory=dict)
    items_by_product: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> the prices vended less the refunds given
    refunded: dict[str, int] = field(default_factory=dict)  # currency -> operators' refunds given that day
    items: int = 0
    denials: int = 0
    denials_by_reason: dict[str, int] = field(default_factory=dict)

    def slots_by_machine(self) -> list[tuple[str, list[SlotRow]]]:
        """The stock grouped per machine, machines in order."""
        grouped: dict[str, list[SlotRow]] = defaultdict(list)
        for slot in self.slots:
            grouped[slot.machine].append(slot)
        return sorted(grouped.items())

    def chart_data(self) -> dict[str, Any]:
        """The two charts' series, for the page's script."""
        hours = [f"{h:02d}" for h in range(24)]
        return {
            "day": self.day,
            "hours": {"labels": hours, "items": [self.items_by_hour.get(h, 0) for h in hours]},
            "products": {"labels": list(self.items_by_product), "items": list(self.items_by_product.values())},
        }


def read_board(store: Store, day: str | None = None, heard: dict[str, bool] | None = None) -> Board:
    """The board for ``day`` (default: the latest day any sale was reported on, today on a live fleet).

    ``heard`` says, per machine, whether this backend process has heard it lately; a machine whose
    last word was "online" but that has gone quiet shows as ``silent``.
    """
    day = day or _latest_day(store)
    board = Board(day=day)
    snapshots = _snapshots(store)
    board.slots = [slot for machine in sorted(snapshots) for slot in snapshots[machine][2]]
    board.alerts = _open_alerts(store, snapshots)
    board.commands = _commands(store)
    if day is not None:
        _sales_of(store, day, board)
    board.machines = _machines(store, snapshots, heard or {}, _per_machine(store, day) if day else {})
    return board


def _latest_day(store: Store) -> str | None:
    rows = store.execute(f"SELECT MAX(substr({store.json_field('time')}, 1, 10)) FROM reports WHERE kind = 'sale'")
    return str(rows[0][0]) if rows and rows[0][0] else None


def _snapshots(store: Store) -> dict[str, tuple[int, str, list[SlotRow], str]]:
    """Each machine's newest stock report: machine -> (seq, time, slots, location)."""
    rows = store.execute(
        "SELECT r.machine, r.seq, r.payload FROM reports r JOIN "
        "(SELECT machine, MAX(seq) AS seq FROM reports WHERE kind = 'stock' GROUP BY machine) newest "
        "ON r.machine = newest.machine AND r.seq = newest.seq"
    )
    snapshots: dict[str, tuple[int, str, list[SlotRow], str]] = {}
    for machine, seq, payload in rows:
        body = payload_of(payload)
        slots = [
            SlotRow(
                str(machine),
                slot,
                str(s["product"]),
                int(s["stock"]),
                int(s["capacity"]),
                int(s["price"]),
                bool(s["enabled"]),
                str(s.get("name", {}).get("zh-TW", "")),
                str(s.get("name", {}).get("en", "")),
                bool(s.get("sellable", s["enabled"] and int(s["stock"]) > 0)),
            )
            for slot, s in sorted(body.get("slots", {}).items())
        ]
        snapshots[str(machine)] = (int(seq), str(body.get("time", "")), slots, str(body.get("location", "")))
    return snapshots


def _machines(
    store: Store,
    snapshots: dict[str, tuple[int, str, list[SlotRow], str]],
    heard: dict[str, bool],
    sales: dict[str, tuple[str | None, int]],
) -> list[MachineRow]:
    rows_of_machines = store.execute("SELECT machine, state, last_heartbeat, outbox FROM machines")
    known = {str(m): (str(s), b, o) for m, s, b, o in rows_of_machines}
    rows = []
    for machine in sorted(set(known) | set(snapshots)):
        state, beat, outbox = known.get(machine, ("unknown", None, None))
        if state == "online" and not heard.get(machine, True):
            state = "silent"
        snapshot = snapshots.get(machine)
        depth = int(outbox) if outbox is not None else None
        taken = snapshot[1] if snapshot else None
        last_sale, revenue = sales.get(machine, (None, 0))
        where = snapshot[3] if snapshot else ""
        rows.append(MachineRow(machine, state, _in_zone_of(beat, taken), depth, taken, last_sale, revenue, where))
    return rows


def _in_zone_of(instant: str | None, local: str | None) -> str | None:
    """``instant`` (a heartbeat, stamped by the machine's clock, often UTC) at the offset of ``local`` (its reports').

    Every time on the page then reads in the machine's own zone, as its stock and sales times do.
    """
    if not instant or not local:
        return instant
    try:
        offset = datetime.fromisoformat(local).utcoffset()
        at = datetime.fromisoformat(instant)
    except ValueError:
        return instant
    if offset is None or at.tzinfo is None:
        return instant
    return at.astimezone(timezone(offset)).isoformat(timespec="seconds")


def _per_machine(store: Store, day: str) -> dict[str, tuple[str | None, int]]:
    """Per machine, the day's last sale time and its revenue (vended sales, less the refunds given that day)."""
    time, price, outcome = store.json_field("time"), store.json_field("price"), store.json_field("outcome")
    rows = store.execute(
        f"SELECT machine, MAX(CASE WHEN {outcome} = 'vended' THEN {time} END), "
        f"SUM(CASE WHEN {outcome} = 'vended' THEN 1 ELSE -1 END * CAST({price} AS INTEGER)) FROM reports "
        f"WHERE kind = 'sale' AND {outcome} IN ('vended', 'credited') AND {store.on_day()} GROUP BY machine",
        (day,),
    )
    return {str(machine): (None if last is None else str(last), int(total or 0)) for machine, last, total in rows}


def _open_alerts(store: Store, snapshots: dict[str, tuple[int, str, list[SlotRow], str]]) -> list[AlertRow]:
    """Alerts nobody has dealt with yet.

    A low-stock alert closes when a later snapshot shows the slot above the alerted level; a jam, door
    or fault alert closes with the machine's next stock snapshot (someone restocked, or a command
    changed the machine) -- the machine reports no "cleared" event of its own -- except a jam alert
    while that snapshot shows its slot out of sale (the machine took it out: enable_slot once mended).
    """
    rows = store.execute(
        "SELECT machine, seq, payload FROM reports WHERE kind = 'alert' ORDER BY seq DESC LIMIT ?", (ALERT_LIMIT * 4,)
    )
    alerts = []
    for machine, seq, payload in rows:
        body = payload_of(payload)
        snapshot = snapshots.get(str(machine))
        if snapshot is not None and snapshot[0] > int(seq) and _closed_by(body, snapshot[2]):
            continue
        alerts.append(
            AlertRow(
                str(machine),
                int(seq),
                str(body.get("time", "")),
                str(body.get("kind", "")),
                body.get("slot"),
                str(body.get("detail") or (f"{body['stock']} left" if "stock" in body else "")),
            )
        )
    alerts.sort(key=lambda a: (a.time, a.machine, a.seq), reverse=True)
    return alerts[:ALERT_LIMIT]


def _closed_by(alert: dict[str, Any], slots: list[SlotRow]) -> bool:
    """Whether a later stock snapshot with these ``slots`` closes ``alert`` (``_open_alerts`` says when)."""
    slot = next((row for row in slots if row.slot == alert.get("slot")), None)
    if alert.get("kind") == "low_stock":
        return slot is not None and slot.stock > int(alert.get("stock", 0))
    if alert.get("kind") == "jam" and slot is not None:
        return slot.enabled
    return True


def _commands(store: Store, limit: int = 10) -> list[CommandRow]:
    rows = store.execute(
        "SELECT machine, payload FROM reports WHERE kind = 'cmd-result' "
        f"ORDER BY {store.json_field('time')} DESC, seq DESC LIMIT ?",
        (limit,),
    )
    commands = []
    for machine, payload in rows:
        body = payload_of(payload)
        time, name, ok = str(body.get("time", "")), str(body.get("command")), bool(body.get("ok"))
        if name not in COMMANDS:  # a message on a made-up topic: its free text is not the machine's to show
            commands.append(CommandRow(str(machine), time, "(unknown command topic)", False, "refused"))
            continue
        reason = body.get("reason")
        commands.append(CommandRow(str(machine), time, name, ok, str(reason)[:REASON_LIMIT] if reason else None))
    return commands


def _sales_of(store: Store, day: str, board: Board) -> None:
    by_hour: dict[str, int] = defaultdict(int)
    by_product: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    time, product, price, currency = (store.json_field(name) for name in ("time", "product", "price", "currency"))
    rows = store.execute(
        f"SELECT substr({time}, 12, 2), {product}, {price}, {currency} FROM reports "
        f"WHERE kind = 'sale' AND {store.json_field('outcome')} = 'vended' AND {store.on_day()}",
        (day,),
    )
    for hour, product, price, currency in rows:
        by_hour[str(hour)] += 1
        by_product[str(product)] += 1
        revenue[str(currency or "")] += int(price)
    board.items_by_hour = dict(by_hour)
    board.items_by_product = dict(sorted(by_product.items(), key=lambda kv: (-kv[1], kv[0])))
    money = f"{store.json_field('currency')}, SUM(CAST({store.json_field('price')} AS INTEGER))"
    refunds = store.execute(  # an operator's refund reaches the vendor as a `credited` sale, on the day it was given
        f"SELECT {money} FROM reports WHERE kind = 'sale' AND {store.json_field('outcome')} = 'credited' "
        f"AND {store.on_day()} GROUP BY {store.json_field('currency')}",
        (day,),
    )
    board.refunded = {str(unit or ""): int(total) for unit, total in refunds if total}
    for unit, total in board.refunded.items():
        revenue[unit] -= total
    board.revenue = dict(revenue)
    board.items = sum(by_hour.values())
    reason = store.json_field("reason")
    by_reason = store.execute(
        f"SELECT {reason}, COUNT(*) FROM reports WHERE kind = 'denial' AND {store.on_day()} GROUP BY {reason}",
        (day,),
    )
    board.denials_by_reason = {str(why): int(count) for why, count in sorted(by_reason, key=lambda r: (-r[1], r[0]))}
    board.denials = sum(board.denials_by_reason.values())
