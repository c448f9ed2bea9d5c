"""Money as integer minor units tagged with a currency, so TWD never mixes with anything else."""

from __future__ import annotations

from dataclasses import dataclass


class CurrencyMismatch(ValueError):
    """Raised when arithmetic would silently mix two currencies."""


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """An amount in minor units; TWD has no subunit in practice, so 25 means NT$25."""

    amount: int
    currency: str = "TWD"

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"money amount must be an int of minor units, got {self.amount!r}")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def covers(self, other: Money) -> bool:
        """True when this balance can pay ``other`` without going negative."""
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        symbol = "NT$" if self.currency == "TWD" else f"{self.currency} "
        return f"{symbol}{self.amount}"
