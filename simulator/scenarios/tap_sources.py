"""Where a scenario's `tap:` steps come from: the virtual reader, an emulated one, or a real one on a desk.

``--reader emulate:pn532`` (or ``rdm6300``, ``line``) starts that device's emulator on a pty and
sends each tap through it as bytes, read back by the real driver; a real reader URL
(``pn532:/dev/ttyUSB0``) asks a person to tap the card and checks the uid read is the one expected.
The scenario's clock is virtual, so it stands still while the reader is read: outcomes, balances and
reports are the same as with the virtual reader.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from firmware.domain import CardTap
from firmware.errors import VendingError
from firmware.ports import Clock
from firmware.readers.registry import BY_NAME, open_reader, parse_reader_url
from firmware.readers.virtual import VirtualReader
from simulator.emulators.devices import DEVICES, Device
from simulator.scenarios.schema import uid_tail

EMULATE = "emulate:"
VIRTUAL = ("virtual", "virtual:")
READ_TIMEOUT_S = 10.0  # an emulated tap is read in milliseconds; this long means the reader is gone


class TapSource(Protocol):
    def tap(self, uid: str, card: str) -> CardTap:
        """The tap the machine sees when the card ``uid`` is presented; ``card`` names it to a person."""

    def close(self) -> None: ...


class VirtualTaps:
    def __init__(self, clock: Clock) -> None:
        self.reader = VirtualReader(clock)

    def tap(self, uid: str, card: str) -> CardTap:
        self.reader.present(uid)
        tap = self.reader.read_tap()
        if tap is None:
            raise RuntimeError("the virtual reader lost a presented card")
        return tap

    def close(self) -> None:
        self.reader.close()


class EmulatedTaps:
    """The device's emulator on a pty, and the project's driver reading it: the bytes a real reader sends."""

    def __init__(self, protocol: str, clock: Clock) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="vending-reader-")
        link = Path(self.folder.name) / "reader0"
        self.device: Device = DEVICES[protocol](link).start()
        # every tap is lifted once read, so no debounce: the same card twice in a row is two taps
        self.reader: Any = open_reader(f"{protocol}:{link}?debounce=0", clock)
        self.reader.read_tap(0.05)  # open and configure the port before the first card comes

    def tap(self, uid: str, card: str) -> CardTap:
        self.device.tap(uid)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            tap: CardTap | None = self.reader.read_tap(0.2)
            if tap is not None:
                if tap.uid != uid.upper():
                    raise VendingError(f"the {self.device.protocol} reader read {uid_tail(tap.uid)} for card {card}")
                return tap
        raise VendingError(f"the emulated {self.device.protocol} reader did not read card {card} in {READ_TIMEOUT_S}s")

    def close(self) -> None:
        self.reader.close()
        self.device.stop()
        self.folder.cleanup()


class PromptedTaps:
    """A real reader: a person taps each card when asked; a wrong card is asked for again."""

    def __init__(self, url: str, clock: Clock, prompt: Callable[[str], None]) -> None:
        self.reader: Any = open_reader(url, clock)
        self.prompt = prompt

    def tap(self, uid: str, card: str) -> CardTap:
        wanted = uid.upper()
        self.prompt(f"tap card {card} ({uid_tail(wanted)}) now")
        while True:
            tap: CardTap | None = self.reader.read_tap(0.2)
            if tap is None:
                continue
            if tap.uid == wanted:
                return tap
            self.prompt(f"that was another card ({uid_tail(tap.uid)}); tap card {card} ({uid_tail(wanted)})")

    def close(self) -> None:
        self.reader.close()


TapSourceFactory = Callable[[Clock], TapSource]


def tap_source_for(url: str, prompt: Callable[[str], None]) -> TapSourceFactory:
    """``virtual:``, ``emulate:PROTOCOL`` or a reader URL; checked now, opened when the run's clock exists."""
    if url in VIRTUAL:
        return VirtualTaps
    if url.startswith(EMULATE):
        protocol = url[len(EMULATE) :]
        if protocol not in DEVICES:
            raise VendingError(f"--reader {url}: emulate one of {', '.join(f'{EMULATE}{p}' for p in DEVICES)}")
        return lambda clock: EmulatedTaps(protocol, clock)
    parse_reader_url(url)  # an unknown driver or a malformed URL is refused before the run starts
    return lambda clock: PromptedTaps(url, clock, prompt)


def unreadable_cards(url: str, uids: dict[str, str]) -> list[str]:
    """The cards (name -> uid) a reader cannot read: an RDM6300 reads 5-byte EM4100 ids only, a PN532 4/7/10 bytes."""
    if url in VIRTUAL:
        return []
    name = url[len(EMULATE) :] if url.startswith(EMULATE) else parse_reader_url(url).driver
    protocol = BY_NAME.get(name)
    if protocol is None:
        return []
    unreadable = {card: uid for card, uid in uids.items() if not protocol.reads(uid)}
    return [f"{card} ({len(uid) // 2}-byte uid {uid_tail(uid)})" for card, uid in unreadable.items()]
