"""Reader drivers by name, with lazy imports; reader URLs like ``pn532:/dev/ttyUSB0?debounce=1``."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qsl

from firmware.errors import UnknownDriverError, VendingError
from firmware.readers.base import ReaderSpec

# name -> (module, class, default baud)
DRIVERS: dict[str, tuple[str, str, int]] = {
    "pn532": ("firmware.readers.pn532", "PN532Reader", 115200),
    "rdm6300": ("firmware.readers.text", "RDM6300Reader", 9600),
    "line": ("firmware.readers.text", "LineReader", 9600),
    "virtual": ("firmware.readers.virtual", "VirtualReader", 0),
}
OPTIONS = {"baud", "debounce", "format", "endian"}
READER_URL_HELP = "pn532:/dev/ttyUSB0, rdm6300:/dev/ttyS1?baud=9600, line:/tmp/reader0, virtual:"


def parse_reader_url(url: str) -> ReaderSpec:
    """``DRIVER:PORT[?baud=N&debounce=S&format=hex|dec&endian=be|le]``; PORT is any pyserial URL."""
    driver, sep, rest = url.partition(":")
    if not sep or not rest and driver != "virtual":
        raise VendingError(f"reader {url!r}: expected DRIVER:PORT, e.g. pn532:/dev/ttyUSB0")
    if driver not in DRIVERS:
        raise UnknownDriverError("reader driver", driver, list(DRIVERS))
    port, _, query = rest.partition("?")
    options: dict[str, str] = {}
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in OPTIONS:
            options[key] = value
        else:
            kept.append(f"{key}={value}")  # pyserial's own URL options (e.g. loop://?logging=debug)
    if kept:
        port = f"{port}?{'&'.join(kept)}"
    try:
        baud = int(options.pop("baud", DRIVERS[driver][2]))
        debounce = float(options.pop("debounce", "1.0"))
    except ValueError:
        raise VendingError(f"reader {url!r}: baud must be an integer and debounce a number of seconds") from None
    if options.get("format", "hex") not in ("hex", "dec") or options.get("endian", "be") not in ("be", "le"):
        raise VendingError(f"reader {url!r}: format is hex or dec, endian is be or le")
    return ReaderSpec(driver, port, baud, debounce, options)


def open_reader(url: str, clock: Any, **kwargs: Any) -> Any:
    """Build the driver for ``url``; nothing is opened until its first ``read_tap``."""
    spec = parse_reader_url(url)
    module, cls, _ = DRIVERS[spec.driver]
    reader_class = getattr(importlib.import_module(module), cls)
    if spec.driver == "virtual":
        return reader_class(clock)
    return reader_class(spec, clock, **kwargs)
