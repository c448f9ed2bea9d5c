"""NXP PN532 over HSU: wake-up, SAMConfiguration, firmware check, then a standing InListPassiveTarget.

Every command is answered by an ACK and then a response frame; a response with a bad checksum is
answered with a NACK and the chip repeats it (up to three times).

The search for a card is left to the chip: with MxRtyPassiveActivation at FF, InListPassiveTarget
answers only when a card is in the field, so the host blocks on the port instead of asking again
and again. Once a second the search is cancelled (an ACK from the host) and started anew, whose
ACK shows the reader is still there; while a card stays on the reader it is read every 0.1 s.
"""

from __future__ import annotations

import logging
import time

from firmware.readers import pn532_frames as f
from firmware.readers.base import SerialReader
from firmware.readers.transport import ReaderOffline

log = logging.getLogger(__name__)
WAKE_UP = b"\x55\x55" + bytes(14)
GET_FIRMWARE_VERSION, SAM_CONFIGURATION, RF_CONFIGURATION = 0x02, 0x14, 0x32
IN_LIST_PASSIVE_TARGET, IN_RELEASE = 0x4A, 0x52
SEARCH_UNTIL_A_CARD = b"\x05\xff\x01\xff"  # RFConfiguration MaxRetries: ATR FF, PSL 01, passive activation FF
# a PN532 acks within 15 ms (nfcpy waits 100 ms); a little more keeps a busy host from calling it silent
ACK_TIMEOUT_S, RESPONSE_TIMEOUT_S, RETRIES = 0.25, 0.5, 3
RESTART_SEARCH_S = 1.0  # how long a search stands before the host checks the reader is still answering
CARD_HELD_POLL_S = 0.1  # while a card stays on the reader, look again this often (debounce needs it)


class PN532Reader(SerialReader):
    driver = "pn532"
    firmware: str | None = None
    searching_since: float | None = None  # when the standing InListPassiveTarget was sent
    next_search = 0.0

    def start(self) -> None:
        self.searching_since = None
        self.port.write(WAKE_UP)
        self.command(SAM_CONFIGURATION, b"\x01\x14\x01")  # normal mode, 1 s timeout, use IRQ
        version = self.command(GET_FIRMWARE_VERSION)
        if len(version) < 4 or version[0] != 0x32:
            raise ReaderOffline(f"not a PN532 (firmware answer {version.hex()})")
        self.firmware = f"PN532 v{version[1]}.{version[2]} support 0x{version[3]:02X}"
        self.command(RF_CONFIGURATION, SEARCH_UNTIL_A_CARD)
        log.info("reader %s: %s", self.name, self.firmware)

    def command(self, code: int, params: bytes = b"") -> bytes:
        self.send(code, params)
        answer = self.response(code, RESPONSE_TIMEOUT_S)
        if answer is None:
            raise ReaderOffline(f"no response to command 0x{code:02X}")
        return answer

    def send(self, code: int, params: bytes = b"") -> None:
        """Write the command and wait for its ACK; a late answer to a cancelled search is not one."""
        self.port.write(f.encode(f.command(code, params)))
        ack = self.read_frame(f.decode, ACK_TIMEOUT_S)
        while isinstance(ack, f.Info):
            ack = self.read_frame(f.decode, ACK_TIMEOUT_S)
        if ack is None:
            raise ReaderOffline(f"no ACK for command 0x{code:02X}: the reader is silent")
        if isinstance(ack, f.ErrorFrame):
            raise ReaderOffline(f"the reader refused command 0x{code:02X}")

    def response(self, code: int, timeout: float) -> bytes | None:
        """The response's data, or None if none came within ``timeout``; a corrupt one is asked for again."""
        for _ in range(RETRIES):
            frame = self.read_frame(f.decode, timeout)
            if isinstance(frame, f.Info) and frame.tfi == f.CHIP and frame.command == code + 1:
                return frame.params
            if isinstance(frame, f.ErrorFrame):
                raise ReaderOffline(f"application error from the reader for 0x{code:02X}")
            if frame is None:
                return None
            self.port.write(f.encode(f.Nack()))  # corrupt or unexpected: ask for it again
        raise ReaderOffline(f"no valid response to command 0x{code:02X} after {RETRIES} tries")

    def poll(self, timeout: float) -> str | None | bool:
        now = time.monotonic()
        if self.searching_since is None:
            if now < self.next_search:  # a card was just read: give the field a moment
                time.sleep(min(timeout, self.next_search - now))
                return False
            self.send(IN_LIST_PASSIVE_TARGET, b"\x01\x00")  # one target, 106 kbps type A
            self.searching_since = now
        params = self.response(IN_LIST_PASSIVE_TARGET, timeout)
        if params is None:
            if time.monotonic() - self.searching_since >= RESTART_SEARCH_S:
                self.port.write(f.encode(f.Ack()))  # cancel; the next search's ACK shows the reader is there
                self.searching_since = None
            return False
        self.searching_since = None
        if not params or params[0] == 0:
            return None
        uid = parse_target(params)
        self.command(IN_RELEASE, params[1:2])
        self.next_search = time.monotonic() + CARD_HELD_POLL_S
        return uid

    def close(self) -> None:
        if self.transport is not None and self.searching_since is not None:
            try:
                self.transport.write(f.encode(f.Ack()))  # leave the chip idle, not searching
            except ReaderOffline:
                pass
        self.searching_since = None
        super().close()


def parse_target(params: bytes) -> str | None:
    """NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1 -> the uid in upper-case hex."""
    if len(params) < 6:
        return None
    length = params[5]
    uid = params[6 : 6 + length]
    return uid.hex().upper() if len(uid) == length and length in (4, 7, 10) else None
