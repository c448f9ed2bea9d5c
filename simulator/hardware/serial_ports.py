"""Which serial ports a laptop has, which USB-UART bridge each is, and which card reader answers on it.

Listing uses pyserial's ``list_ports`` (Linux /sys, macOS IOKit, Windows SetupAPI). Probing opens
each port with the project's own drivers: the PN532's start-up (wake-up, SAMConfiguration,
GetFirmwareVersion) at 115200 baud, then a short listen at 9600 baud for readers that only talk
(an RDM6300 repeating a tag, a reader typing a uid line), which answer only while a card is held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from firmware.readers.base import take_frame
from firmware.readers.registry import SERIAL_PROTOCOLS, ReaderProtocol, open_serial_reader
from firmware.readers.transport import ReaderOffline, SerialTransport
from simulator.hardware.virtual import VirtualClock

# the usual USB-UART bridges on PN532 and RDM6300 breakout cables, by USB vendor:product
BRIDGES: dict[tuple[int, int | None], str] = {
    (0x1A86, 0x7523): "CH340/CH341 (WCH)",
    (0x1A86, 0x55D4): "CH9102 (WCH)",
    (0x10C4, 0xEA60): "CP210x (Silicon Labs)",
    (0x0403, 0x6001): "FT232R (FTDI)",
    (0x0403, 0x6015): "FT231X/FT-X (FTDI)",
    (0x0403, 0x6014): "FT232H (FTDI)",
    (0x0403, 0x6010): "FT2232 (FTDI)",
    (0x067B, 0x2303): "PL2303 (Prolific)",
    (0x067B, 0x23A3): "PL2303GC (Prolific)",
    (0x1A86, None): "a WCH bridge",
    (0x0403, None): "an FTDI bridge",
    (0x067B, None): "a Prolific bridge",
    (0x10C4, None): "a Silicon Labs bridge",
}
LISTEN_S = 1.5  # an RDM6300 repeats every 100 ms; a line reader types once per presentation


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    vid: int | None = None
    pid: int | None = None

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None and self.pid is not None else "-"

    @property
    def bridge(self) -> str:
        """A hint for the USB-UART bridge chip, or an empty string for one we do not know."""
        if self.vid is None:
            return ""
        return BRIDGES.get((self.vid, self.pid)) or BRIDGES.get((self.vid, None), "")


def list_ports() -> list[PortInfo]:
    from serial.tools import list_ports as pyserial_ports

    return [
        PortInfo(port.device, port.description or "", port.vid, port.pid)
        for port in sorted(pyserial_ports.comports(), key=lambda port: port.device)
    ]


def probe(url: str, listen_s: float = LISTEN_S) -> str:
    """What answered on ``url``: a reader that is asked (its start-up), else one heard talking, or why not.

    Every serial protocol in the firmware's registry is tried, in its order: those without a
    ``listen`` by their start-up at their baud rate, then those with one by ear at theirs.
    """
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    asked = [protocol for protocol in SERIAL_PROTOCOLS if protocol.listen is None]
    for protocol in asked:
        reader = open_serial_reader(f"{protocol.name}:{url}", clock, backoff_max_s=0)
        try:
            if reader.ensure_open():
                return f"{protocol.name}: {reader.identity} (reader URL {protocol.name}:{url})"
        finally:
            reader.close()
    listening = [protocol for protocol in SERIAL_PROTOCOLS if protocol.listen is not None]
    for baud in sorted({protocol.baud for protocol in listening}):
        answer = listen(url, baud, [p for p in listening if p.baud == baud], listen_s)
        if answer:
            return answer
    names = ", ".join(f"{p.name} at {p.baud} baud" for p in asked)
    return f"nothing answered: no {names}; a reader that only talks speaks only while a card is held to it"


def listen(url: str, baud: int, protocols: list[ReaderProtocol], listen_s: float) -> str:
    """The first of ``protocols`` heard on ``url`` at ``baud`` within ``listen_s``; an empty string if none."""
    try:
        port = SerialTransport(url, baud)
    except ReaderOffline as exc:
        return f"cannot open: {exc}"
    try:
        received = b""
        deadline = time.monotonic() + listen_s
        while time.monotonic() < deadline:
            received += port.read()
            for protocol in protocols:
                ear = protocol.listen
                if ear is not None and heard(ear.decode, received, ear.card):
                    return f"{protocol.name}: {ear.what} at {baud} baud (reader URL {protocol.name}:{url})"
    except ReaderOffline as exc:
        return f"read failed: {exc}"
    finally:
        port.close()
    return ""


def heard(decode: Callable[[bytes], tuple[int, object | None]], buffer: bytes, kind: type) -> bool:
    """Whether ``buffer`` holds a whole frame of ``kind`` (past noise and corrupt frames)."""
    while True:
        buffer, frame = take_frame(decode, buffer)
        if frame is None:
            return False
        if isinstance(frame, kind):
            return True
