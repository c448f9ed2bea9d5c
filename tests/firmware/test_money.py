from __future__ import annotations

import pytest

from firmware.money import CurrencyMismatch, Money


def test_money_refuses_floats_and_mixed_currencies():
    assert Money(25) + Money(5) == Money(30)
    assert Money(30).covers(Money(30)) and not Money(29).covers(Money(30))
    with pytest.raises(CurrencyMismatch):
        Money(1, "TWD") + Money(1, "USD")
    with pytest.raises(TypeError):
        Money(2.5)
    assert str(Money(25)) == "NT$25"
