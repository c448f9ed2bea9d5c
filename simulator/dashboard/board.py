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
from typing import Any, Protocol

from simulator.backends.store import payload_of

LOW_STOCK_SHARE = 0.2  # a slot at or under a fifth of its capacity is highlighted (the machine alerts on its own level)
ALERT_LIMIT = 50


class Store(Protocol):
    """The vendor backend's store (SQLite or PostgreSQL): ``?`` placeholders, JSON fields by name."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def json_field(self, name: str) -> str: ...


@dataclass(frozen=True)
class MachineRow:
    machine: str
    state: str  # online, offline, silent (online by its last word, but no heartbeat heard lately), unknown
    last_seen: str | None
    outbox: int | None
    snapshot_time: str | None


@dataclass(frozen=True)
class SlotRow:
    machine: str
    slot: str
    product: str
    stock: int
    capacity: int
    price: int
    enabled: bool

    @property
    def low(self) -> bool:
        return self.stock <= self.capacity * LOW_STOCK_SHARE


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
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> sum of the prices vended
    items: int = 0
    denials: int = 0

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
    board.machines = _machines(store, snapshots, heard or {})
    board.slots = [slot for machine in sorted(snapshots) for slot in snapshots[machine][2]]
    board.alerts = _open_alerts(store, snapshots)
    board.commands = _commands(store)
    if day is not None:
        _sales_of(store, day, board)
    return board


def _latest_day(store: Store) -> str | None:
    rows = store.execute(f"SELECT MAX(substr({store.json_field('time')}, 1, 10)) FROM reports WHERE kind = 'sale'")
    return str(rows[0][0]) if rows and rows[0][0] else None


def _snapshots(store: Store) -> dict[str, tuple[int, str, list[SlotRow]]]:
    """Each machine's newest stock report: machine -> (seq, time, slots)."""
    rows = store.execute(
        "SELECT r.machine, r.seq, r.payload FROM reports r JOIN "
        "(SELECT machine, MAX(seq) AS seq FROM reports WHERE kind = 'stock' GROUP BY machine) newest "
        "ON r.machine = newest.machine AND r.seq = newest.seq"
    )
    snapshots: dict[str, tuple[int, str, list[SlotRow]]] = {}
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
            )
            for slot, s in sorted(body.get("slots", {}).items())
        ]
        snapshots[str(machine)] = (int(seq), str(body.get("time", "")), slots)
    return snapshots


def _machines(
    store: Store, snapshots: dict[str, tuple[int, str, list[SlotRow]]], heard: dict[str, bool]
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
        rows.append(MachineRow(machine, state, beat, depth, snapshot[1] if snapshot else None))
    return rows


def _open_alerts(store: Store, snapshots: dict[str, tuple[int, str, list[SlotRow]]]) -> list[AlertRow]:
    """Alerts nobody has dealt with yet.

    A low-stock alert closes when a later snapshot shows the slot above the alerted level; a jam, door
    or fault alert closes with the machine's next stock snapshot (someone restocked, or a command
    changed the machine) -- the machine reports no "cleared" event of its own.
    """
    rows = store.execute(
        "SELECT machine, seq, payload FROM reports WHERE kind = 'alert' ORDER BY seq DESC LIMIT ?", (ALERT_LIMIT * 4,)
    )
    alerts = []
    for machine, seq, payload in rows:
        body = payload_of(payload)
        snapshot = snapshots.get(str(machine))
        if snapshot is not None and snapshot[0] > int(seq):
            if body.get("kind") != "low_stock":
                continue
            level = {s.slot: s.stock for s in snapshot[2]}.get(str(body.get("slot")))
            if level is not None and level > int(body.get("stock", 0)):
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
        commands.append(CommandRow(str(machine), time, name, ok, body.get("reason")))
    return commands


def _sales_of(store: Store, day: str, board: Board) -> None:
    by_hour: dict[str, int] = defaultdict(int)
    by_product: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    time, product, price, currency = (store.json_field(name) for name in ("time", "product", "price", "currency"))
    rows = store.execute(
        f"SELECT substr({time}, 12, 2), {product}, {price}, {currency} FROM reports "
        f"WHERE kind = 'sale' AND {store.json_field('outcome')} = 'vended' AND substr({time}, 1, 10) = ?",
        (day,),
    )
    for hour, product, price, currency in rows:
        by_hour[str(hour)] += 1
        by_product[str(product)] += 1
        revenue[str(currency or "")] += int(price)
    board.items_by_hour = dict(by_hour)
    board.items_by_product = dict(sorted(by_product.items(), key=lambda kv: (-kv[1], kv[0])))
    board.revenue = dict(revenue)
    board.items = sum(by_hour.values())
    board.denials = int(
        store.execute(f"SELECT COUNT(*) FROM reports WHERE kind = 'denial' AND substr({time}, 1, 10) = ?", (day,))[0][0]
    )
