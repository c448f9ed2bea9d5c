"""An EVA-DTS 6.1 DEX/UCS audit file from a machine's books: what every operator system reads.

The layout follows EVA-DTS (docs/dex.md): ``DXS`` opens the transmission, ``ST``/``SE`` frame the
transaction set, ``ID1/ID4/ID5`` name the machine, its currency and the read time, ``VA1`` and
``DA2`` carry all paid (here: all cashless) sales, ``PA1/PA2`` each selection with its price and its
counters, ``EA1/EA2`` door openings (``EGS``) and jammed vends (``EJJ``), ``G85`` the CRC and ``DXE``
closes. Counters come in pairs: *since init* (the machine's whole life up to the audited day) and
*since reset* (the audited day: the interval). Rendering is a pure function of ``Audit``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from firmware.errors import VendingError

CRLF = "\r\n"
CURRENCY_NUMERIC = {"TWD": "901"}
DEX_FORBIDDEN = ("*", "~", "\r", "\n")
EVENTS = {"door_opened": "EGS", "vend_refunded": "EJJ"}  # door open; vend failed (jam), as DEX boards code them


def dex_field(value: str, name: str) -> str:
    """A field for a DEX file, from the user or the books: refused, naming it, unless plain printable ASCII.

    EVA-DTS 6.1 files are ASCII with ``*`` between fields and ``~`` and line ends between segments; no
    escape for either exists (docs/dex.md), so a field holding one could forge a segment the G85 CRC
    would then cover. Text in other scripts has no standard escape either: it is refused, never
    written as ``?`` (product ids are ASCII by the catalog's rule; names never go into a DEX file).
    """
    bad = [repr(char) for char in DEX_FORBIDDEN if char in value]
    if bad or not (value.isascii() and value.isprintable()):
        what = ", ".join(bad) if bad else "characters other than printable ASCII"
        raise VendingError(f"{name}: a DEX field may not contain {what} (EVA-DTS 6.1: * ~ and line ends separate)")
    return value


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0): the G85 check value; ``crc16_arc(b"123456789") == 0xBB3D``."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@dataclass(frozen=True)
class Counter:
    """Value and count, since init and since the last reset (the interval)."""

    value_init: int = 0
    count_init: int = 0
    value_reset: int = 0
    count_reset: int = 0


@dataclass(frozen=True)
class Selection:
    slot: str
    product: str
    price: int
    sold: Counter


@dataclass(frozen=True)
class Event:
    code: str
    at: datetime


@dataclass
class Audit:
    machine: str
    location: str
    currency: str
    read_at: datetime
    paid: Counter
    selections: list[Selection] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # in the interval
    event_totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # code -> (since init, since reset)


def render(audit: Audit) -> str:
    """The DEX file: CRLF lines, the G85 CRC over ST to the line before G85, SE counting ST to SE."""
    paid = audit.paid
    machine = dex_field(audit.machine, "machine id")
    money = f"{paid.value_init}*{paid.count_init}*{paid.value_reset}*{paid.count_reset}"
    body = [
        "ST*001*0001",
        f"ID1*{machine}*CAMPUS-EMU*1*{dex_field(audit.location, 'location')}**{machine}",
        f"ID4*0*1{CURRENCY_NUMERIC.get(audit.currency, '000')}*{audit.currency}",
        f"ID5*{audit.read_at:%Y%m%d}*{audit.read_at:%H%M%S}",
        f"VA1*{money}",
        f"DA1*{audit.machine}-CARD*CAMPUS-CARD*1",
        f"DA2*{money}",
    ]
    for s in audit.selections:
        body += [
            f"PA1*{dex_field(s.slot, 'slot')}*{s.price}*{dex_field(s.product, f'slot {s.slot} product id')}",
            f"PA2*{s.sold.count_init}*{s.sold.value_init}*{s.sold.count_reset}*{s.sold.value_reset}",
        ]
    body += [f"EA1*{e.code}*{e.at:%y%m%d}*{e.at:%H%M}" for e in audit.events]
    body += [f"EA2*{code}*{init}*{reset}" for code, (init, reset) in sorted(audit.event_totals.items())]
    check = crc16_arc("".join(line + CRLF for line in body).encode("ascii"))
    body += [f"G85*{check:04X}", f"SE*{len(body) + 2}*0001"]
    lines = [f"DXS*{audit.machine[:10]}*VA*V0/6*1", *body, "DXE*1*1"]
    return "".join(line + CRLF for line in lines)


def audit_from(
    conn: sqlite3.Connection, day: str, read_at: datetime, location: str = "", currency: str = "TWD"
) -> Audit:
    """The audit of ``day`` (the interval) and everything before it (since init), from the machine database."""
    machine = conn.execute("SELECT value FROM meta WHERE key = 'machine_id'").fetchone()
    sold = {
        slot: Counter(int(vi), int(ci), int(vr), int(cr))
        for slot, vi, ci, vr, cr in conn.execute(
            "SELECT slot, SUM(price), COUNT(*), SUM(CASE WHEN local_day = ? THEN price ELSE 0 END), "
            "SUM(local_day = ?) FROM vends WHERE status = 'completed' AND local_day <= ? GROUP BY slot",
            (day, day, day),
        )
    }
    selections = [
        Selection(slot, product, int(price), sold.get(slot, Counter()))
        for slot, product, price in conn.execute("SELECT slot, product, price FROM slots ORDER BY slot")
    ]
    paid = Counter(*(sum(getattr(s.sold, name) for s in selections) for name in Counter.__dataclass_fields__))
    events: list[Event] = []
    totals: dict[str, tuple[int, int]] = {}
    for kind, code in EVENTS.items():
        times = [datetime.fromisoformat(at) for (at,) in conn.execute("SELECT at FROM journal WHERE kind = ?", (kind,))]
        before = [t for t in times if t.date().isoformat() <= day]
        today = [t for t in before if t.date().isoformat() == day]
        events += [Event(code, t) for t in today]
        totals[code] = (len(before), len(today))
    events.sort(key=lambda e: e.at)
    return Audit(machine[0] if machine else "unknown", location, currency, read_at, paid, selections, events, totals)
