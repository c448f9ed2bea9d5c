from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from firmware.identity.pseudonym import Pseudonymizer

TAP = datetime.fromisoformat("2026-03-02T12:05:31+08:00")


def test_pseudonyms_are_128_bit_base32_and_name_one_visit_under_one_key():
    first, second = Pseudonymizer("2026-1", b"k" * 32), Pseudonymizer("2026-2", b"j" * 32)
    p = first("04A1B2C3D4E5F6", TAP)
    assert len(p) == 26 and set(p) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert first("04:a1:b2:c3:d4:e5:f6", TAP) == p  # one spelling of the uid
    assert first("04A1B2C3D4E5F6", TAP.replace(second=2)) == p, "the same visit (minute) keeps its pseudonym"
    assert first("04A1B2C3D4E5F6", TAP.astimezone(datetime.now().astimezone().tzinfo)) == p, "zone-independent"
    assert first("04A1B2C3D4E5F6", TAP + timedelta(minutes=1)) != p, "the next visit is unlinkable"
    assert first("04A1B2C3D4E5F6", TAP + timedelta(days=1)) != p
    assert first("04B2C3D4E5F607", TAP) != p
    assert second("04A1B2C3D4E5F6", TAP) != p
    assert "k" * 32 not in repr(first)
    with pytest.raises(ValueError):
        Pseudonymizer("t", b"short")
