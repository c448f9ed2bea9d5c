"""Every reader protocol declared once, and reader URLs like ``pn532:/dev/ttyUSB0?debounce=1``.

A ``ReaderProtocol`` says everything the project knows about one kind of reader: its driver (imported
only when such a reader is opened, like python-can's interfaces), its default baud rate, the uid sizes
it can read, the URL options it takes and how ``vending reader list --probe`` recognises it. The
registry, the device emulators (``simulator/emulators/devices.py``), the scenario checks and the
probe all read ``PROTOCOLS``; adding a reader is one entry here plus its framer, driver and emulator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from firmware.errors import UnknownDriverError, VendingError
from firmware.ports import CardReader, Clock
from firmware.readers import line_frames, rdm6300_frames
from firmware.readers.base import Decoder, ReaderSpec, SerialReader

COMMON_OPTIONS = frozenset({"baud", "debounce"})
MAX_DEBOUNCE_S = 60.0  # a card lifted this long and put back is a new tap, whatever the URL says
READER_URL_HELP = "pn532:/dev/ttyUSB0, rdm6300:/dev/ttyS1?baud=9600, line:/tmp/reader0, virtual:"


@dataclass(frozen=True)
class Listening:
    """How a reader that only talks is recognised by ear: its framer, and the frame that carries a card."""

    decode: Decoder
    card: type
    what: str  # how the probe names what it heard


@dataclass(frozen=True)
class ReaderProtocol:
    """One kind of reader. ``listen`` is None for a reader that is asked (its start-up handshake identifies it)."""

    name: str
    driver: str  # "module:Class", imported when a reader of this kind is opened
    baud: int  # the default; a URL's ?baud= overrides it
    uid_bytes: tuple[int, ...]  # the uid sizes it reads; () for any
    listen: Listening | None = None
    options: frozenset[str] = frozenset()  # URL options besides baud and debounce
    check: Callable[[dict[str, str]], str | None] = lambda options: None  # a reason the options are wrong
    reaches_cards: bool = False  # it carries commands to the card (a purse is read and debited through it)

    @property
    def serial(self) -> bool:
        return self.baud > 0

    def reads(self, uid: str) -> bool:
        """Whether this reader can read a card with ``uid`` (hex): its size is one the reader knows."""
        return not self.uid_bytes or len(uid) // 2 in self.uid_bytes


def _line_options(options: dict[str, str]) -> str | None:
    if options.get("format", "hex") not in ("hex", "dec") or options.get("endian", "be") not in ("be", "le"):
        return "format is hex or dec, endian is be or le"
    return None


PROTOCOLS: tuple[ReaderProtocol, ...] = (
    ReaderProtocol("pn532", "firmware.readers.pn532:PN532Reader", 115200, (4, 7, 10), reaches_cards=True),
    ReaderProtocol(
        "rdm6300",
        "firmware.readers.text:RDM6300Reader",
        9600,
        (5,),  # EM4100: 40-bit ids
        Listening(rdm6300_frames.decode, rdm6300_frames.Tag, "a tag frame"),
    ),
    ReaderProtocol(
        "line",
        "firmware.readers.text:LineReader",
        9600,
        (4, 7, 10),
        Listening(lambda buffer: line_frames.decode(buffer, line_frames.LineFormat()), line_frames.Uid, "a uid line"),
        frozenset({"format", "endian"}),
        _line_options,
    ),
    ReaderProtocol("virtual", "firmware.readers.virtual:VirtualReader", 0, ()),
)
BY_NAME: dict[str, ReaderProtocol] = {protocol.name: protocol for protocol in PROTOCOLS}
SERIAL_PROTOCOLS: tuple[ReaderProtocol, ...] = tuple(p for p in PROTOCOLS if p.serial)


def protocol_of(name: str) -> ReaderProtocol:
    protocol = BY_NAME.get(name)
    if protocol is None:
        raise UnknownDriverError("reader driver", name, list(BY_NAME))
    return protocol


def parse_reader_url(url: str) -> ReaderSpec:
    """``DRIVER:PORT[?baud=N&debounce=S&...]``; PORT is any pyserial URL; the driver's own options kept."""
    driver, sep, rest = url.partition(":")
    if not sep or not rest and driver != "virtual":
        raise VendingError(f"reader {url!r}: expected DRIVER:PORT, e.g. pn532:/dev/ttyUSB0")
    protocol = protocol_of(driver)
    port, _, query = rest.partition("?")
    options: dict[str, str] = {}
    kept = []
    known = COMMON_OPTIONS | protocol.options
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:  # the last one was taken, without a word
            raise VendingError(f"reader {url!r}: {key} is given twice")
        if key in known:
            options[key] = value
        elif "://" in port:
            kept.append(f"{key}={value}")  # pyserial's own URL options (e.g. loop://?logging=debug)
        else:  # a typo (debouce=0) became part of a device path no port has: the reader "offline" for good
            raise VendingError(f"reader {url!r}: unknown option {key!r}; {driver} takes {', '.join(sorted(known))}")
    if kept:
        port = f"{port}?{'&'.join(kept)}"
    try:
        baud = int(options.pop("baud", protocol.baud))
        debounce = float(options.pop("debounce", "1.0"))
    except ValueError:
        raise VendingError(f"reader {url!r}: baud must be an integer and debounce a number of seconds") from None
    if protocol.serial and baud < 1:  # it was taken, and the reader stayed "offline" for good: a typo, not a cable
        raise VendingError(f"reader {url!r}: baud must be a positive number of bits a second, not {baud}")
    if not 0 <= debounce <= MAX_DEBOUNCE_S:  # nan made every frame of a held card a new tap, inf one tap ever
        raise VendingError(f"reader {url!r}: debounce is 0 to {MAX_DEBOUNCE_S:g} seconds, not {debounce}")
    wrong = protocol.check(options)
    if wrong is not None:
        raise VendingError(f"reader {url!r}: {wrong}")
    return ReaderSpec(driver, port, baud, debounce, options)


def _driver_class(protocol: ReaderProtocol) -> Any:
    module, _, name = protocol.driver.partition(":")
    return getattr(importlib.import_module(module), name)


def check_reader_for(payment_mode: str, url: str) -> None:
    """``VendingError`` for a reader a machine paying in ``payment_mode`` cannot sell through, before anything starts.

    With the purse on the card the machine reads and debits the card through its reader: a reader that
    only reports a card's id would have every tap refused as a card not recognised.
    """
    driver = parse_reader_url(url).driver
    if payment_mode != "card" or BY_NAME[driver].reaches_cards:
        return
    able = ", ".join(protocol.name for protocol in PROTOCOLS if protocol.reaches_cards)
    raise VendingError(f"reader {url!r}: the purse on the card is read and debited through the reader, and a "
                       f"{driver} reader only reports a card's id; use {able}")  # fmt: skip


def open_reader(url: str, clock: Clock, **kwargs: Any) -> CardReader:
    """Build the driver for ``url``; nothing is opened until its first ``read_tap``."""
    spec = parse_reader_url(url)
    protocol = BY_NAME[spec.driver]
    if protocol.serial:
        return open_serial_reader(url, clock, **kwargs)
    reader: CardReader = _driver_class(protocol)(clock)
    return reader


def open_serial_reader(url: str, clock: Clock, **kwargs: Any) -> SerialReader:
    """A serial reader's driver for ``url`` (not ``virtual:``), for callers that open it themselves (the probe)."""
    spec = parse_reader_url(url)
    protocol = BY_NAME[spec.driver]
    if not protocol.serial:
        raise VendingError(f"reader {url!r}: {protocol.name} is not a serial reader")
    reader: SerialReader = _driver_class(protocol)(spec, clock, **kwargs)
    return reader
