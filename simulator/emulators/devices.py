"""PN532, RDM6300 and text-line reader devices behind a PtyPort, with cards placed and removed.

The PN532 answers what libnfc and nfcpy send at start-up (PN532 User Manual UM0701-02): it decodes the
host's frames with the same pure framer the driver uses, acks each command and sends the response.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from firmware.readers import line_frames, rdm6300_frames
from firmware.readers import pn532_frames as f
from simulator.emulators.pty_port import PtyPort

FIRMWARE = bytes.fromhex("32010607")  # IC PN532, v1.6, support ISO14443A/B + ISO18092


class Device:
    """A card field and a port; subclasses say what goes on the wire."""

    protocol = "device"

    def __init__(self, link: Path | None = None, seed: int = 0) -> None:
        self.port = PtyPort(link, seed)
        self.card: str | None = None
        self.lift_after_read = False
        self.reads = 0
        self.silent = False
        self.corrupt_next = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{self.protocol}-emulator", daemon=True)

    @property
    def path(self) -> str:
        return self.port.path

    def start(self) -> Device:
        self._thread.start()
        return self

    def place(self, uid: str) -> None:
        self.card, self.lift_after_read = uid.upper(), False

    def remove(self) -> None:
        self.card = None

    def tap(self, uid: str) -> None:
        """Place, and lift as soon as the host has read the card once."""
        self.card, self.lift_after_read = uid.upper(), True

    def card_read(self) -> None:
        self.reads += 1
        if self.lift_after_read:
            self.card, self.lift_after_read = None, False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.port.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()

    def step(self) -> None:
        raise NotImplementedError

    def command(self, line: str) -> str:
        """One control line: place UID | remove | tap UID | fault noise|split|corrupt|silent|clear | unplug | replug."""
        words = line.split()
        if not words:
            return ""
        verb, args = words[0], words[1:]
        if verb in ("place", "tap") and args:
            getattr(self, verb)(args[0])
        elif verb == "remove":
            self.remove()
        elif verb == "unplug":
            self.port.unplug()
        elif verb == "replug":
            return f"replugged at {self.port.plug()}"
        elif verb == "fault" and args:
            self.fault(args[0])
        else:
            return f"unknown command: {line!r}"
        return "ok"

    def fault(self, kind: str) -> None:
        if kind == "clear":
            self.port.noise = self.port.split = self.silent = self.corrupt_next = False
        elif kind in ("noise", "split"):
            setattr(self.port, kind, True)
        elif kind == "silent":
            self.silent = True
        elif kind == "corrupt":
            self.corrupt_next = True
        else:
            raise ValueError(f"unknown fault {kind!r}")


class PN532Device(Device):
    protocol = "pn532"

    def __init__(self, link: Path | None = None, seed: int = 0) -> None:
        super().__init__(link, seed)
        self.buffer = b""
        self.last_response = b""
        self.sam_configured = False  # LowVbat until SAMConfiguration, as libnfc expects
        self.commands: list[int] = []

    def step(self) -> None:
        self.buffer += self.port.read()
        while self.buffer:
            consumed, frame = f.decode(self.buffer)
            if consumed == 0:
                return
            self.buffer = self.buffer[consumed:]
            if frame is not None and not self.silent:
                self.handle(frame)

    def handle(self, frame: f.Frame) -> None:
        if isinstance(frame, f.Nack):
            self.port.write(self.last_response)  # resend the last response
        elif isinstance(frame, f.Info) and frame.tfi == f.HOST:
            self.port.write(f.encode(f.Ack()))
            self.commands.append(frame.command)
            response = self.respond(frame.command, frame.params)
            wire = f.encode(response)
            self.last_response = wire
            if self.corrupt_next:
                self.corrupt_next = False
                wire = wire[:-2] + bytes([(wire[-2] + 1) & 0xFF, 0])
            self.port.write(wire)
        elif isinstance(frame, f.Corrupt):
            self.port.write(f.encode(f.Nack()))

    def respond(self, code: int, params: bytes) -> f.Frame:
        if code == 0x02:
            return f.response(code, FIRMWARE)
        if code == 0x14:
            self.sam_configured = True
            return f.response(code)
        if code in (0x32, 0x12, 0x08):  # RFConfiguration, SetParameters, WriteRegister
            return f.response(code)
        if code == 0x06:  # ReadRegister: one byte per 16-bit address
            return f.response(code, bytes(len(params) // 2))
        if code == 0x4A:
            return f.response(code, self._targets())
        if code == 0x52:  # InRelease
            return f.response(code, b"\x00")
        return f.ErrorFrame()

    def _targets(self) -> bytes:
        if self.card is None:
            return b"\x00"
        uid = bytes.fromhex(self.card)
        atqa, sak = (b"\x00\x04", 0x08) if len(uid) == 4 else (b"\x00\x44", 0x00)
        result = b"\x01\x01" + atqa + bytes([sak, len(uid)]) + uid
        self.card_read()
        return result


class RDM6300Device(Device):
    """125 kHz module: repeats the tag's frame while it is in the field (every 100 ms)."""

    protocol = "rdm6300"

    def step(self) -> None:
        self.port.read(0)  # the host sends nothing; this is where an unplug takes effect
        card = self.card
        if card is not None and not self.silent:
            uid = card if len(card) == 10 else ("00" + card)[-10:]
            wire = rdm6300_frames.encode(rdm6300_frames.Tag(uid))
            if self.corrupt_next:
                self.corrupt_next = False
                wire = wire[:11] + b"00" + wire[13:]
            self.port.write(wire)
            self.card_read()
        time.sleep(0.1)


class LineDevice(Device):
    """A reader that types the uid and a line end, once per presentation."""

    protocol = "line"

    def __init__(self, link: Path | None = None, seed: int = 0, fmt: line_frames.LineFormat | None = None) -> None:
        super().__init__(link, seed)
        self.fmt = fmt or line_frames.LineFormat()
        self.sent: str | None = None

    def step(self) -> None:
        self.port.read(0)
        card = self.card
        if card is not None and card != self.sent and not self.silent:
            self.port.write(line_frames.encode(line_frames.Uid(card), self.fmt))
            self.sent = card
            self.card_read()
        elif card is None:
            self.sent = None
        time.sleep(0.02)


DEVICES = {"pn532": PN532Device, "rdm6300": RDM6300Device, "line": LineDevice}
