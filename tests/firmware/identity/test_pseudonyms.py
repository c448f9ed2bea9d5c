from __future__ import annotations

import pytest

from firmware.identity.pseudonym import Pseudonymizer

VISIT = "TPE-DAAN-JH-01-5f0e3c2a9b7d1e46"  # a transaction id: random, with the machine's id


def test_pseudonyms_are_128_bit_base32_and_name_one_visit_under_one_key():
    first, second = Pseudonymizer("2026-1", b"k" * 32), Pseudonymizer("2026-2", b"j" * 32)
    p = first("04A1B2C3D4E5F6", VISIT)
    assert len(p) == 26 and set(p) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert first("04:a1:b2:c3:d4:e5:f6", VISIT) == p  # one spelling of the uid
    assert first("04A1B2C3D4E5F6", VISIT) == p, "the same visit keeps its pseudonym (a refund after a drop)"
    assert first("04A1B2C3D4E5F6", "TPE-DAAN-JH-01-5f0e3c2a9b7d1e47") != p, "the next visit is unlinkable"
    assert first("04A1B2C3D4E5F6", "TPE-DAAN-JH-02-5f0e3c2a9b7d1e46") != p, "another machine's visit too"
    assert first("04B2C3D4E5F607", VISIT) != p
    assert second("04A1B2C3D4E5F6", VISIT) != p
    assert "k" * 32 not in repr(first)
    with pytest.raises(ValueError):
        Pseudonymizer("t", b"short")


def test_a_visits_letters_are_rfc_4648_base32_of_its_digest() -> None:
    import base64
    import os

    from firmware.identity.pseudonym import base32_lower

    for digest in [bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(2000))]:
        assert base32_lower(digest) == base64.b32encode(digest).decode("ascii").rstrip("=").lower()
    with pytest.raises(ValueError, match="16 bytes"):
        base32_lower(bytes(15))
