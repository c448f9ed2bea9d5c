"""The PN532's command set over HSU frames, as nfcpy's ``Chipset``: each command, its ACK, its response.

No policy here (when to search, how often, what a silence means is ``pn532.py``'s) and no port: the
commands write and read frames through the two functions they are given, so they run over any byte
pipe a driver opens. Timeouts are the reader's (``read_frame`` waits on the driver's injected clock).
"""

from __future__ import annotations

from collections.abc import Callable

from firmware.cards.tag import CardGone, CardRefused
from firmware.readers import pn532_frames as f
from firmware.readers.base import Decoder
from firmware.readers.transport import ReaderOffline

WAKE_UP = b"\x55\x55" + bytes(14)
GET_FIRMWARE_VERSION, SAM_CONFIGURATION, RF_CONFIGURATION = 0x02, 0x14, 0x32
IN_LIST_PASSIVE_TARGET, IN_RELEASE, IN_DATA_EXCHANGE = 0x4A, 0x52, 0x40
TIMEOUT_STATUS, MIFARE_AUTH_ERROR = 0x01, 0x14  # UM0701-02 table 7-1; the low six bits of the status byte
SEARCH_UNTIL_A_CARD = b"\x05\xff\x01\xff"  # RFConfiguration MaxRetries: ATR FF, PSL 01, passive activation FF
ONE_TYPE_A_TARGET = b"\x01\x00"  # InListPassiveTarget: one target, 106 kbps type A
# a PN532 acks within 15 ms (nfcpy waits 100 ms); a little more keeps a busy host from calling it silent
ACK_TIMEOUT_S, RESPONSE_TIMEOUT_S, RETRIES = 0.25, 0.5, 3


class PN532Commands:
    """Frames out through ``write``, frames in through ``read_frame``; ReaderOffline when the chip fails us."""

    def __init__(self, write: Callable[[bytes], None], read_frame: Callable[[Decoder, float], object | None]) -> None:
        self.write = write
        self.read_frame = read_frame

    # ---- the exchange every command follows ---------------------------------------------------------
    def call(self, code: int, params: bytes = b"") -> bytes:
        self.send(code, params)
        answer = self.response(code, RESPONSE_TIMEOUT_S)
        if answer is None:
            raise ReaderOffline(f"no response to command 0x{code:02X}")
        return answer

    def send(self, code: int, params: bytes = b"") -> None:
        """Write the command and wait for its ACK; a late answer to a cancelled search is not one."""
        self.write(f.encode(f.command(code, params)))
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
            self.write(f.encode(f.Nack()))  # corrupt or unexpected: ask for it again
        raise ReaderOffline(f"no valid response to command 0x{code:02X} after {RETRIES} tries")

    def abort(self) -> None:
        """An ACK from the host cancels the command the chip is working on (a standing search)."""
        self.write(f.encode(f.Ack()))

    # ---- the commands the driver uses ---------------------------------------------------------------
    def wake_up(self) -> None:
        self.write(WAKE_UP)

    def sam_configuration(self) -> None:
        self.call(SAM_CONFIGURATION, b"\x01\x14\x01")  # normal mode, 1 s timeout, use IRQ

    def firmware_version(self) -> str:
        version = self.call(GET_FIRMWARE_VERSION)
        if len(version) < 4 or version[0] != 0x32:
            raise ReaderOffline(f"not a PN532 (firmware answer {version.hex()})")
        return f"PN532 v{version[1]}.{version[2]} support 0x{version[3]:02X}"

    def search_until_a_card(self) -> None:
        """MxRtyPassiveActivation FF: InListPassiveTarget answers only once a card is in the field."""
        self.call(RF_CONFIGURATION, SEARCH_UNTIL_A_CARD)

    def start_search(self) -> None:
        self.send(IN_LIST_PASSIVE_TARGET, ONE_TYPE_A_TARGET)

    def search_result(self, timeout: float) -> bytes | None:
        return self.response(IN_LIST_PASSIVE_TARGET, timeout)

    def release(self, target: bytes) -> None:
        self.call(IN_RELEASE, target)

    def list_card(self, uid: bytes) -> bool:
        """Select the card ``uid`` as target 1 for a transaction with it; False if it has left the field.

        The chip searches as the standing search set it (MxRtyPassiveActivation FF): with no card in
        the field it never answers. An ACKed command with no answer in the response time is a card
        that has gone (a quick tap), not a silent reader: the search is cancelled, as the driver's is.
        """
        self.send(IN_LIST_PASSIVE_TARGET, ONE_TYPE_A_TARGET + uid)
        found = self.response(IN_LIST_PASSIVE_TARGET, RESPONSE_TIMEOUT_S)
        if found is None:
            self.abort()
            return False
        return bool(found) and found[0] == 1 and parse_target(found) == uid.hex().upper()

    def data_exchange(self, payload: bytes) -> bytes:
        """InDataExchange with target 1: the card's answer; ``CardRefused`` or ``CardGone`` by the status byte.

        Status 14 is a refused MIFARE authentication; 01 means the card did not answer (gone, or mute
        after a refusal: which status a real chip gives for a NAK is not confirmed, ../shared/cards.md).
        """
        answer = self.call(IN_DATA_EXCHANGE, b"\x01" + payload)
        status = answer[0] & 0x3F if answer else TIMEOUT_STATUS
        if status == MIFARE_AUTH_ERROR:
            raise CardRefused("MIFARE authentication refused: not this card's key")
        if status == TIMEOUT_STATUS:
            raise CardGone("the card did not answer")
        if status:
            raise CardRefused(f"the reader reported status 0x{status:02X} for the card")
        return answer[1:]


def parse_target(params: bytes) -> str | None:
    """NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1 -> the uid in upper-case hex."""
    if len(params) < 6:
        return None
    length = params[5]
    uid = params[6 : 6 + length]
    return uid.hex().upper() if len(uid) == length and length in (4, 7, 10) else None
