"""NXP PN532 over HSU: wake-up, SAMConfiguration, firmware check, then InListPassiveTarget polling.

Every command is answered by an ACK and then a response frame; a response with a bad checksum is
answered with a NACK and the chip repeats it (up to three times).
"""

from __future__ import annotations

import logging

from firmware.readers import pn532_frames as f
from firmware.readers.base import SerialReader
from firmware.readers.transport import ReaderOffline

log = logging.getLogger(__name__)
WAKE_UP = b"\x55\x55" + bytes(14)
GET_FIRMWARE_VERSION, SAM_CONFIGURATION, IN_LIST_PASSIVE_TARGET, IN_RELEASE = 0x02, 0x14, 0x4A, 0x52
# a PN532 acks within 15 ms (nfcpy waits 100 ms); a little more keeps a busy host from calling it silent
ACK_TIMEOUT_S, RESPONSE_TIMEOUT_S, RETRIES = 0.25, 0.5, 3


class PN532Reader(SerialReader):
    driver = "pn532"
    firmware: str | None = None

    def start(self) -> None:
        self.port.write(WAKE_UP)
        self.command(SAM_CONFIGURATION, b"\x01\x14\x01")  # normal mode, 1 s timeout, use IRQ
        version = self.command(GET_FIRMWARE_VERSION)
        if len(version) < 4 or version[0] != 0x32:
            raise ReaderOffline(f"not a PN532 (firmware answer {version.hex()})")
        self.firmware = f"PN532 v{version[1]}.{version[2]} support 0x{version[3]:02X}"
        log.info("reader %s: %s", self.name, self.firmware)

    def command(self, code: int, params: bytes = b"") -> bytes:
        self.port.write(f.encode(f.command(code, params)))
        ack = self.read_frame(f.decode, ACK_TIMEOUT_S)
        if ack is None:
            raise ReaderOffline(f"no ACK for command 0x{code:02X}: the reader is silent")
        if isinstance(ack, f.ErrorFrame):
            raise ReaderOffline(f"the reader refused command 0x{code:02X}")
        for _ in range(RETRIES):
            frame = self.read_frame(f.decode, RESPONSE_TIMEOUT_S)
            if isinstance(frame, f.Info) and frame.tfi == f.CHIP and frame.command == code + 1:
                return frame.params
            if isinstance(frame, f.ErrorFrame):
                raise ReaderOffline(f"application error from the reader for 0x{code:02X}")
            if frame is None:
                raise ReaderOffline(f"no response to command 0x{code:02X}")
            self.port.write(f.encode(f.Nack()))  # corrupt or unexpected: ask for it again
        raise ReaderOffline(f"no valid response to command 0x{code:02X} after {RETRIES} tries")

    def poll(self, timeout: float) -> str | None | bool:
        params = self.command(IN_LIST_PASSIVE_TARGET, b"\x01\x00")  # one target, 106 kbps type A
        if not params or params[0] == 0:
            return None
        uid = parse_target(params)
        self.command(IN_RELEASE, params[1:2])
        return uid


def parse_target(params: bytes) -> str | None:
    """NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1 -> the uid in upper-case hex."""
    if len(params) < 6:
        return None
    length = params[5]
    uid = params[6 : 6 + length]
    return uid.hex().upper() if len(uid) == length and length in (4, 7, 10) else None
