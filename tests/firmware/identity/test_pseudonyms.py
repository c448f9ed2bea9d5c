from __future__ import annotations

import pytest

from firmware.identity.pseudonym import Pseudonymizer


def test_pseudonyms_are_128_bit_base32_stable_per_key_and_differ_across_keys():
    first, second = Pseudonymizer("2026-1", b"k" * 32), Pseudonymizer("2026-2", b"j" * 32)
    p = first("04A1B2C3D4E5F6")
    assert len(p) == 26 and set(p) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert first("04:a1:b2:c3:d4:e5:f6") == p  # one spelling of the uid
    assert second("04A1B2C3D4E5F6") != p
    assert "k" * 32 not in repr(first)
    with pytest.raises(ValueError):
        Pseudonymizer("t", b"short")
