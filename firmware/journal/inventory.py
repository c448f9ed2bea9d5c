"""The planogram as the machine believes it: product, price, stock and whether each slot sells."""

from __future__ import annotations

from dataclasses import dataclass

from firmware.config.machine import MachineSetup
from firmware.journal.database import Database


@dataclass(frozen=True, slots=True)
class SlotState:
    slot: str
    product: str
    capacity: int
    stock: int
    price: int
    enabled: bool


class Inventory:
    """Slot state in the machine database; changes join the caller's journal transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def seed(self, setup: MachineSetup) -> None:
        for code, spec in setup.config.slots.items():
            self.db.conn.execute(
                "INSERT INTO slots (slot, product, capacity, stock, price, enabled) VALUES (?, ?, ?, ?, ?, ?)",
                (code, spec.product, spec.capacity, spec.stock, setup.price_of(code), int(spec.enabled)),
            )

    def get(self, slot: str) -> SlotState | None:
        row = self.db.conn.execute(
            "SELECT slot, product, capacity, stock, price, enabled FROM slots WHERE slot = ?", (slot,)
        ).fetchone()
        return SlotState(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None

    def all(self) -> list[SlotState]:
        rows = self.db.conn.execute(
            "SELECT slot, product, capacity, stock, price, enabled FROM slots ORDER BY slot"
        ).fetchall()
        return [SlotState(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def stock(self) -> dict[str, int]:
        return {s.slot: s.stock for s in self.all()}

    def take_one(self, slot: str) -> int:
        self.db.conn.execute("UPDATE slots SET stock = stock - 1 WHERE slot = ? AND stock > 0", (slot,))
        state = self.get(slot)
        return state.stock if state else 0

    def set_stock(self, slot: str, count: int) -> None:
        self.db.conn.execute("UPDATE slots SET stock = ? WHERE slot = ?", (count, slot))

    def set_price(self, slot: str, price: int) -> None:
        self.db.conn.execute("UPDATE slots SET price = ? WHERE slot = ?", (price, slot))

    def set_enabled(self, slot: str, enabled: bool) -> None:
        self.db.conn.execute("UPDATE slots SET enabled = ? WHERE slot = ?", (int(enabled), slot))
