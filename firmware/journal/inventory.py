"""The planogram as the machine believes it: product, price, stock and whether each slot sells."""

from __future__ import annotations

from firmware.config.machine import MachineSetup
from firmware.domain import SlotState
from firmware.journal.database import Database

COLUMNS = "slot, product, capacity, stock, price, enabled"


def _state(row: tuple[str, str, int, int, int, int]) -> SlotState:
    return SlotState(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


class Inventory:
    """Slot state in the machine database; changes join the caller's journal transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, SlotState | None] = {}  # write-through; emptied when a transaction rolls back
        self._codes: list[str] | None = None
        db.on_rollback.append(self._forget)

    def _forget(self) -> None:
        self._cache.clear()
        self._codes = None

    def seed(self, setup: MachineSetup) -> None:
        for code, spec in setup.config.slots.items():
            self.db.conn.execute(
                "INSERT INTO slots (slot, product, capacity, stock, price, enabled) VALUES (?, ?, ?, ?, ?, ?)",
                (code, spec.product, spec.capacity, spec.stock, setup.price_of(code), int(spec.enabled)),
            )
        self._forget()

    def get(self, slot: str) -> SlotState | None:
        if slot not in self._cache:
            row = self.db.conn.execute(f"SELECT {COLUMNS} FROM slots WHERE slot = ?", (slot,)).fetchone()  # noqa: S608
            self._cache[slot] = _state(row) if row else None
        return self._cache[slot]

    def all(self) -> list[SlotState]:
        if self._codes is None:  # the planogram's slots are fixed once seeded
            self._codes = [row[0] for row in self.db.conn.execute("SELECT slot FROM slots ORDER BY slot")]
        return [state for code in self._codes if (state := self.get(code)) is not None]

    def stock(self) -> dict[str, int]:
        return {s.slot: s.stock for s in self.all()}

    def take_one(self, slot: str) -> int:
        """One fewer in ``slot``, never below zero; its stock after (the row comes back with the update)."""
        row = self.db.conn.execute(
            f"UPDATE slots SET stock = stock - 1 WHERE slot = ? AND stock > 0 RETURNING {COLUMNS}",  # noqa: S608
            (slot,),
        ).fetchone()
        if row is not None:
            self._cache[slot] = state = _state(row)
            return state.stock
        unchanged = self.get(slot)  # already empty, or no such slot
        return unchanged.stock if unchanged else 0

    def set_stock(self, slot: str, count: int) -> None:
        self._update(slot, "stock", count)

    def set_price(self, slot: str, price: int) -> None:
        self._update(slot, "price", price)

    def set_enabled(self, slot: str, enabled: bool) -> None:
        self._update(slot, "enabled", int(enabled))

    def _update(self, slot: str, column: str, value: int) -> None:
        self.db.conn.execute(f"UPDATE slots SET {column} = ? WHERE slot = ?", (value, slot))  # noqa: S608
        self._cache.pop(slot, None)
