"""A machine selling for hours holds no more objects than after its first sales.

The benchmarks' and the soak's virtual display kept every message shown: three a vend, 15,000 over
5,000 vends, each walked by every full pass of the collector (bench/common.py builds that machine).
"""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path

from bench.durability import Vending


def live_objects() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects())


def test_thousands_of_vends_leave_the_live_objects_as_they_were(tmp_path: Path) -> None:
    vending = Vending(tmp_path, publish=False)
    try:
        vending.vend_many(200)  # every cache warm, a restock among them
        before = live_objects()
        vending.vend_many(2000)
        grown = live_objects() - before
    finally:
        vending.close()
    assert sum(grown.values()) < 100, f"objects kept by 2,000 vends: {grown.most_common(5)}"
