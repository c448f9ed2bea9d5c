"""The issuer's database keeps its orders under its first signer's key and refuses any other, changing nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firmware.identity.signing import Identity
from simulator.backends.signer import ForeignSigner, pin
from simulator.backends.store import SqliteReportStore


def test_the_first_signer_is_kept_and_another_is_refused_naming_both(tmp_path: Path) -> None:
    issuer, vendor = Identity.generate("issuer"), Identity.generate("issuer")  # a key is not its label
    store = SqliteReportStore(tmp_path / "issuer.db", "issuer")
    try:
        pin(store, issuer)
        pin(store, issuer)  # again: the same key
        named = rf"key {re.escape(vendor.kid[:12])}… is not the issuer's key .*{re.escape(issuer.kid[:12])}…"
        with pytest.raises(ForeignSigner, match=named):
            pin(store, vendor)
        assert store.execute("SELECT kid FROM issuer_signer") == [(issuer.kid,)]
    finally:
        store.close()
