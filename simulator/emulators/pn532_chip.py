"""The PN532's command set as UM0701-02 section 7 describes it: pure state, no I/O, no waiting.

``execute(code, params)`` answers one host command with the response data (after the response
code), ``None`` for the syntax-error frame, or a ``Pending`` when the chip would keep searching the
field (InListPassiveTarget with retries left, InAutoPoll). The device around it (``devices.py``)
does the framing, the ACKs, the waiting, the wake-up and the serial speed, so that this model is
the same whoever drives it: the project's driver, libnfc's ``pn532_uart`` or nfcpy's ``pn532``.

What a card in the field looks like comes from its uid's length, as on real ISO/IEC 14443-A cards:
4 bytes a MIFARE Classic 1K (ATQA 00 04, SAK 08), 7 bytes a MIFARE Ultralight (00 44, SAK 00),
10 bytes a triple-size uid (00 84, SAK 00). Only type A at 106 kbps is in the field; every other
modulation finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from simulator.emulators.mifare_classic import ClassicCard

FIRMWARE = bytes.fromhex("32010607")  # IC PN532, v1.6, supports ISO/IEC 14443 A and B and ISO 18092
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)  # SetSerialBaudRate BR 0..8
PASSIVE_TRY_S = 0.005  # the model's time for one passive activation attempt (REQA, anticollision, select)
AUTOPOLL_PERIOD_S = 0.15  # InAutoPoll's Period unit
# status codes (UM0701-02 table 7-1)
OK, TIMEOUT, INVALID_PARAMETER, MIFARE_AUTH_ERROR, NOT_IN_CONTEXT = 0x00, 0x01, 0x10, 0x14, 0x27
# RFConfiguration items and their data lengths
RF_ITEMS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
# InAutoPoll types a type A card at 106 kbps answers to: generic 106, MIFARE; ISO-DEP only with SAK bit 6
AUTOPOLL_TYPE_A = {0x00, 0x10}
AUTOPOLL_ISO_DEP_A = 0x20
FIFO_DATA, RX_MODE = 0x6339, 0x6303
RX_CRC_ENABLED = 0x80

# CIU register reset values (PN532 = 80C51 core + PN512 CIU, PN512 data sheet section 9)
CIU_RESET = {
    0x6301: 0x3F, 0x6302: 0x00, 0x6303: 0x00, 0x6304: 0x80, 0x6305: 0x00, 0x6306: 0x10, 0x6307: 0x84,
    0x6308: 0x84, 0x6309: 0x4D, 0x630A: 0x00, 0x630B: 0x00, 0x630C: 0x62, 0x630D: 0x00, 0x630E: 0x00,
    0x630F: 0xEB, 0x6311: 0xFF, 0x6312: 0xFF, 0x6313: 0x88, 0x6314: 0x26, 0x6315: 0x87, 0x6316: 0x48,
    0x6317: 0x88, 0x6318: 0x20, 0x6319: 0x20, 0x631A: 0x00, 0x631B: 0x00, 0x631C: 0x00, 0x631D: 0x00,
    0x6323: 0x80, 0x6326: 0x40, 0x6327: 0x80, 0x6331: 0x20, 0x6332: 0x80, 0x6334: 0x14, 0x6337: 0x21,
    0x633B: 0x08, 0x633C: 0x10, 0x633E: 0xA0,
}  # fmt: skip
GPIO_RESET = (0xFF, 0xFF, 0x00)  # P3, P7, I0I1


@dataclass(frozen=True)
class Pending:
    """Still searching: answer ``give_up()`` after ``timeout_s`` (None: until a card or the host's ACK)."""

    timeout_s: float | None


@dataclass(frozen=True)
class Card:
    """An ISO/IEC 14443-A card as the anticollision loop sees it, with the memory a READ returns.

    ``classic``: a MIFARE Classic card loaded from an image (``--cards DIR``), which enforces its keys,
    access bits and value blocks (mifare_classic.py). A card given by its uid alone answers a READ of
    a blank card's memory and any authentication, which is all a uid reader asks of it.
    """

    uid: bytes
    classic: ClassicCard | None = field(default=None, compare=False)

    @property
    def atqa(self) -> bytes:  # SENS_RES as the PN532 reports it, most significant byte first
        return {4: b"\x00\x04", 7: b"\x00\x44"}.get(len(self.uid), b"\x00\x84")

    @property
    def sak(self) -> int:
        return 0x08 if len(self.uid) == 4 else 0x00

    @property
    def cascaded(self) -> bytes:
        """The uid with cascade tags, as a host passes it to select this one card (ISO/IEC 14443-3)."""
        uid = self.uid
        if len(uid) == 4:
            return uid
        if len(uid) == 7:
            return b"\x88" + uid
        return b"\x88" + uid[:3] + b"\x88" + uid[3:]

    def target_data(self, tg: int) -> bytes:
        return bytes([tg]) + self.atqa + bytes([self.sak, len(self.uid)]) + self.uid

    def read(self, block: int) -> bytes:
        """READ (30 nn): 16 bytes; a Classic block, or four Ultralight pages wrapping at the end."""
        memory = self.memory()
        if self.sak == 0x08:
            start = (block % 64) * 16
            return memory[start : start + 16]
        pages = len(memory) // 4
        return b"".join(memory[((block + i) % pages) * 4 : ((block + i) % pages) * 4 + 4] for i in range(4))

    def memory(self) -> bytes:
        uid = self.uid
        if len(uid) == 4:  # Classic 1K: manufacturer block, then data, sector trailers with transport keys
            bcc = uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
            blocks = [uid + bytes([bcc, self.sak]) + self.atqa[::-1] + bytes.fromhex("6263646566676869")]
            trailer = bytes(6) + bytes.fromhex("FF078069") + b"\xff" * 6  # key A reads as zeros
            for number in range(1, 64):
                blocks.append(trailer if number % 4 == 3 else bytes(16))
            return b"".join(blocks)
        if len(uid) == 7:  # Ultralight: uid with check bytes, lock bytes, capability container, empty NDEF
            bcc0, bcc1 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2], uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
            head = uid[:3] + bytes([bcc0]) + uid[3:] + bytes([bcc1, 0x48, 0x00, 0x00])
            return head + bytes.fromhex("E1100600") + bytes.fromhex("0300FE00") + bytes(44)
        return uid + bytes(2) + bytes.fromhex("E1100600") + bytes.fromhex("0300FE00") + bytes(44)


def crc_a(data: bytes) -> bytes:
    """ISO/IEC 14443-3 CRC_A (initial 6363, reflected polynomial 8408), least significant byte first."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return bytes([crc & 0xFF, crc >> 8])


@dataclass
class Pn532Chip:
    """Registers, settings and the targets listed; ``field()`` says which card (uid hex) is there now."""

    in_field: Callable[[], str | None]
    images: Callable[[str], ClassicCard | None] = lambda uid: None  # a loaded card image for this uid, if any
    registers: dict[int, int] = field(default_factory=lambda: dict(CIU_RESET))
    gpio: list[int] = field(default_factory=lambda: list(GPIO_RESET))
    parameters: int = 0x00
    sam_mode: int = 0x00  # 0 until SAMConfiguration: the chip starts in LowVbat mode
    rf_on: bool = False
    rf_config: dict[int, bytes] = field(default_factory=lambda: {0x05: b"\xff\x01\xff"})  # retries: infinite
    asleep: bool = False
    baud_index: int = 4  # 115200, the speed a PN532 starts at
    pending_baud: int | None = None  # switched after the host's ACK to the SetSerialBaudRate response
    listed: dict[int, Card] = field(default_factory=dict)
    last_error: int = OK
    commands: list[int] = field(default_factory=list)
    on_read: Callable[[], None] = lambda: None  # a host listed the card (the device lifts a tapped card then)
    _pending: tuple[int, bytes] | None = None

    @property
    def baud(self) -> int:
        return BAUD_RATES[self.baud_index]

    def card(self) -> Card | None:
        uid = self.in_field()
        return Card(bytes.fromhex(uid), self.images(uid)) if uid else None

    # ---- one command ----------------------------------------------------------------------------
    def execute(self, code: int, params: bytes) -> bytes | None | Pending:
        self.commands.append(code)
        self.asleep = False
        handler = self.HANDLERS.get(code)
        if handler is None:
            return None
        try:
            return handler(self, params)
        except (IndexError, ValueError):  # a parameter missing or out of range: the chip's syntax error
            return None

    def retry(self) -> bytes | None | Pending:
        """The field changed while a search was pending: look again."""
        if self._pending is None:
            return None
        code, params = self._pending
        return self.HANDLERS[code](self, params)

    def give_up(self) -> bytes:
        """The search ran out of retries or time: nothing found."""
        self._pending = None
        self.registers[FIFO_DATA] = 0x26  # the REQA still in the FIFO: nobody answered
        return b"\x00"

    def abort(self) -> None:
        """The host's ACK while a command runs: stop, answer nothing (UM0701-02 6.2.1.3)."""
        self._pending = None

    def host_acked(self) -> int | None:
        """An ACK after a SetSerialBaudRate response switches the speed; the new baud, or None."""
        if self.pending_baud is None:
            return None
        self.baud_index, self.pending_baud = self.pending_baud, None
        return self.baud

    # ---- miscellaneous --------------------------------------------------------------------------
    def diagnose(self, params: bytes) -> bytes | None:
        test = params[0]
        if test == 0x00:  # communication line test: the data comes back
            return params
        if test in (0x01, 0x02):  # ROM and RAM checks pass
            return b"\x00"
        if test == 0x04:  # polling test: failures out of 128 polls at the given speed
            return b"\x00" if self.card() is not None and params[1] == 0 else b"\x80"
        if test == 0x06:  # attention request / ISO 14443-4 presence of the active target
            return bytes([OK if self._active() is not None else TIMEOUT])
        if test == 0x07:  # self antenna test
            return b"\x00"
        return None

    def firmware_version(self, params: bytes) -> bytes:
        return FIRMWARE

    def general_status(self, params: bytes) -> bytes:
        targets = b"".join(bytes([tg, 0x00, 0x00, 0x00]) for tg in sorted(self.listed))
        return bytes([self.last_error, int(self.rf_on), len(self.listed)]) + targets + b"\x00"

    def read_register(self, params: bytes) -> bytes:
        if not params or len(params) % 2:
            raise ValueError("addresses are 16-bit")
        addresses = [int.from_bytes(params[i : i + 2], "big") for i in range(0, len(params), 2)]
        return bytes(self.registers.get(address, 0x00) for address in addresses)

    def write_register(self, params: bytes) -> bytes:
        if not params or len(params) % 3:
            raise ValueError("address and value triples")
        for i in range(0, len(params), 3):
            self.registers[int.from_bytes(params[i : i + 2], "big")] = params[i + 2]
        return b""

    def read_gpio(self, params: bytes) -> bytes:
        return bytes(self.gpio)

    def write_gpio(self, params: bytes) -> bytes:
        p3, p7 = params[0], params[1]
        if p3 & 0x80:
            self.gpio[0] = p3 & 0x3F | 0xC0
        if p7 & 0x80:
            self.gpio[1] = p7 & 0x06 | 0xF9
        return b""

    def set_serial_baud_rate(self, params: bytes) -> bytes:
        if params[0] >= len(BAUD_RATES):
            raise ValueError("unknown speed")
        self.pending_baud = params[0]
        return b""

    def set_parameters(self, params: bytes) -> bytes:
        self.parameters = params[0]
        return b""

    def sam_configuration(self, params: bytes) -> bytes:
        if not 1 <= params[0] <= 4 or len(params) > 3:
            raise ValueError("mode 1..4")
        self.sam_mode = params[0]
        return b""

    def power_down(self, params: bytes) -> bytes:
        _ = params[0]  # wake-up sources; on a serial line the HSU wakes it
        self.asleep, self.rf_on, self.listed = True, False, {}
        return b"\x00"

    def rf_configuration(self, params: bytes) -> bytes:
        item, data = params[0], params[1:]
        if RF_ITEMS.get(item) != len(data):
            raise ValueError("unknown item or wrong length")
        self.rf_config[item] = data
        if item == 0x01:
            self.rf_on = bool(data[0] & 0x01)
            if not self.rf_on:
                self.listed = {}
        return b""

    # ---- initiator ------------------------------------------------------------------------------
    def in_list_passive_target(self, params: bytes) -> bytes | Pending:
        max_tg, brty, wanted = params[0], params[1], params[2:]
        if not 1 <= max_tg <= 2 or brty > 8:
            raise ValueError("MaxTg 1..2, BrTy 0..8")
        self.rf_on = True
        card = self.card()
        if brty == 0 and card is not None and (not wanted or wanted in (card.uid, card.cascaded)):
            self.registers[FIFO_DATA] = 0x00
            self._list(card)
            return b"\x01" + card.target_data(1)
        self.listed = {}
        retries = self.rf_config[0x05][2]
        if self._pending is None:
            self._pending = (0x4A, params)
            return Pending(None if retries == 0xFF else (retries + 1) * PASSIVE_TRY_S)
        return Pending(None)  # a retry after a field change: the original deadline still holds

    def in_auto_poll(self, params: bytes) -> bytes | Pending:
        poll_nr, period, types = params[0], params[1], params[2:]
        if not 1 <= period <= 0x0F or not 1 <= len(types) <= 15:
            raise ValueError("Period 1..15, 1..15 types")
        self.rf_on = True
        card = self.card()
        wanted = AUTOPOLL_TYPE_A | ({AUTOPOLL_ISO_DEP_A} if card is not None and card.sak & 0x20 else set())
        found = next((kind for kind in types if kind in wanted), None)
        if card is not None and found is not None:
            self._list(card)
            data = card.target_data(1)
            return bytes([1, found, len(data)]) + data
        if self._pending is None:
            self._pending = (0x60, params)
            return Pending(None if poll_nr == 0xFF else poll_nr * len(types) * period * AUTOPOLL_PERIOD_S)
        return Pending(None)

    def in_data_exchange(self, params: bytes) -> bytes:
        tg, data = params[0] & 0x3F, params[1:]
        if tg not in self.listed:
            return bytes([NOT_IN_CONTEXT])
        return self._to_card(self.listed[tg], data, crc_checked=True)

    def in_communicate_thru(self, params: bytes) -> bytes:
        active = self._active()
        if active is None:
            return bytes([TIMEOUT])
        return self._to_card(active, params, crc_checked=bool(self.registers.get(RX_MODE, 0) & RX_CRC_ENABLED))

    def in_deselect(self, params: bytes) -> bytes:
        return bytes([OK if params[0] == 0 or params[0] in self.listed else NOT_IN_CONTEXT])

    def in_release(self, params: bytes) -> bytes:
        tg = params[0]
        if tg == 0:
            self.listed = {}
        elif self.listed.pop(tg, None) is None:
            return bytes([NOT_IN_CONTEXT])
        return b"\x00"

    def in_select(self, params: bytes) -> bytes:
        tg = params[0]
        if tg not in self.listed:
            return bytes([NOT_IN_CONTEXT])
        return bytes([OK if self._present(self.listed[tg]) else TIMEOUT])

    def no_target_in_field(self, params: bytes) -> bytes:
        """InJumpForDEP, InJumpForPSL, InATR, InPSL: no NFC-DEP peer is ever in the field."""
        return bytes([TIMEOUT])

    # ---- the card -------------------------------------------------------------------------------
    def _list(self, card: Card) -> None:
        """The card is target 1 now: a new session on it (a Classic forgets its authentication), read once."""
        self._pending = None
        self.listed = {1: card}
        if card.classic is not None:
            card.classic.select()
        self.on_read()

    def _active(self) -> Card | None:
        card = self.listed.get(1)
        return card if card is not None and self._present(card) else None

    def _present(self, card: Card) -> bool:
        now = self.card()
        return now is not None and now.uid == card.uid

    def _to_card(self, card: Card, data: bytes, crc_checked: bool) -> bytes:
        """What the card answers: READ gives 16 bytes, a MIFARE authentication passes; else it stays mute."""
        if not self._present(card):
            self.last_error = TIMEOUT
            return bytes([TIMEOUT])
        answer: bytes | None = None
        if card.classic is not None:
            answer = card.classic.exchange(data)
        elif len(data) >= 2 and data[0] == 0x30:
            answer = card.read(data[1])
        elif len(data) >= 2 and data[0] in (0x60, 0x61) and card.sak == 0x08:
            answer = b""
        if answer is None:  # a refused MIFARE authentication says so; any other NAK leaves the card mute
            refused_key = card.classic is not None and data[:1] in (b"\x60", b"\x61")
            self.last_error = MIFARE_AUTH_ERROR if refused_key else TIMEOUT
            return bytes([self.last_error])
        self.last_error = OK
        return b"\x00" + (answer if crc_checked or not answer else answer + crc_a(answer))

    HANDLERS: ClassVar[dict[int, Callable[[Pn532Chip, bytes], bytes | None | Pending]]] = {
        0x00: diagnose,
        0x02: firmware_version,
        0x04: general_status,
        0x06: read_register,
        0x08: write_register,
        0x0C: read_gpio,
        0x0E: write_gpio,
        0x10: set_serial_baud_rate,
        0x12: set_parameters,
        0x14: sam_configuration,
        0x16: power_down,
        0x32: rf_configuration,
        0x40: in_data_exchange,
        0x42: in_communicate_thru,
        0x44: in_deselect,
        0x46: no_target_in_field,
        0x4A: in_list_passive_target,
        0x4E: no_target_in_field,
        0x50: no_target_in_field,
        0x52: in_release,
        0x54: in_select,
        0x56: no_target_in_field,
        0x60: in_auto_poll,
    }
