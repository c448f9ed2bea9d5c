"""The ``virtual`` dispenser: spiral motors and a drop sensor in memory, as python-can ships its ``virtual`` bus.

``python -m firmware`` and ``vending serve`` drive it (there is no motor board here); scenarios jam and
empty it. A real machine's motor-board driver would take its place behind the same port.
"""

from __future__ import annotations


class VirtualDispenser:
    """Spiral motors with a drop sensor; slots can be told to jam once or are physically empty."""

    def __init__(self, physical_stock: dict[str, int] | None = None) -> None:
        self.physical: dict[str, int] = dict(physical_stock or {})
        self.jammed: set[str] = set()
        self.dispensed: set[str] = set()
        self.motor_runs = 0

    def jam(self, slot: str) -> None:
        """The next vend from ``slot`` does not drop."""
        self.jammed.add(slot)

    def empty(self, slot: str) -> None:
        self.physical[slot] = 0

    def fill(self, slot: str, count: int) -> None:
        self.physical[slot] = count

    def vend(self, slot: str, txn_id: str) -> bool:
        self.motor_runs += 1
        if slot in self.jammed:
            self.jammed.discard(slot)
            return False
        if self.physical.get(slot, 0) <= 0:
            return False
        self.physical[slot] -= 1
        self.dispensed.add(txn_id)
        return True

    def was_dispensed(self, txn_id: str) -> bool | None:
        return txn_id in self.dispensed
