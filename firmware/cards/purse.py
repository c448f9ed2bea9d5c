"""The campus purse on a MIFARE Classic 1K card: where each thing lives, and the keys that guard it.

Sector 1 is the purse, laid out as stored-value cards are in the field (an EasyCard dump shows a
current and a previous balance in two value blocks, ``../shared/cards.md`` section 5):

- block 4: the balance, a value block (debit with key A, credit with key B only);
- block 5: its backup, the balance before the last debit, so a torn debit can be finished or undone;
- block 6: the card record the issuer writes once: format, profile, school, issue day, and a MAC by
  the issuer's key over the uid and the record, so a machine can tell a record the issuer wrote.

Sector 2 (blocks 8-10) is a cyclic log of the last three steps (counter, time, machine, the card's
spend on that local day, amount taken or, negative, credited, balance after), written with key A: a
guardian's daily limit holds across machines (the newest entry carries the day's spend, so three
slots are enough however many purchases a day has), and the counter numbers every debit and credit
for the issuer's settlement.

Every sector key is diversified from the issuer's card master key and the card's uid (``Sam``), as
real systems do, so one card's keys open no other card. The master key lives in the secure access
module (here: the key file ``card-master.key``), never in a config, a report or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from firmware.cards.mifare import (
    BLOCK,
    MEMORY,
    TRANSPORT,
    TRANSPORT_KEY,
    VALUE_SECTOR,
    Access,
    FormatError,
    decode_value,
    encode_value,
    trailer,
    trailer_of,
)
from firmware.domain import SCHOOL_CODE, SCHOOL_CODE_RULE

PURSE_SECTOR, LOG_SECTOR, CREDIT_SECTOR = 1, 2, 3
BALANCE, BACKUP, RECORD = 4, 5, 6
LOG_BLOCKS = (8, 9, 10)
# the issuer's pending credits (an operator's refund, written by any machine): the highest seq applied, and its backup
CREDITS, CREDITS_BACKUP = 12, 13
CREDIT_FLAG = 0x8000  # a log entry whose machine field has this bit names a pending credit's seq, not a machine
LOG_ACCESS = Access(((0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 1, 1)))  # any machine writes the log with key A
PROFILES = ("student", "staff")
UID_BYTES = (4, 7)  # a MIFARE Classic 1K's single-size NUID or double-size uid
CASCADE_TAG = 0x88  # ISO/IEC 14443-3's CT: what a reader takes for "the uid goes on", never a uid byte there
RECORD_FORMAT = 1
EPOCH = date(2000, 1, 1)
MAX_STEP = 2**15 - 1  # the most one log entry can say was taken or credited
MAX_BALANCE = 10_000  # NT$: an EasyCard's ceiling (../shared/cards.md section 6)
COUNTER_LIMIT = 0xFFFF
CARD_ZONE = ZoneInfo("Asia/Taipei")  # the issuer's days: a day's spend means the same on every machine
MASTER_KEY_BYTES = 32


class CardError(ValueError):
    """A card image that is not a campus purse, or one the issuer did not write.

    ``field``: what was asked of the card that it cannot hold (``uid``, ``profile``, ``school``, ``purse``,
    ``amount``), so a tool names its own option; None when the card itself is at fault.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Sam:
    """The secure access module: diversified sector keys and the record MAC, from the issuer's master key."""

    master: bytes

    def __post_init__(self) -> None:
        if len(self.master) != MASTER_KEY_BYTES:
            raise CardError(f"a card master key is {MASTER_KEY_BYTES} bytes")

    def _derive(self, label: bytes, uid: bytes, sector: int) -> bytes:
        return hmac.new(self.master, b"campus-vending|" + label + b"|" + uid + bytes([sector]), hashlib.sha256).digest()

    def key_a(self, uid: bytes, sector: int) -> bytes:
        return self._derive(b"key-a", uid, sector)[:6]

    def key_b(self, uid: bytes, sector: int) -> bytes:
        return self._derive(b"key-b", uid, sector)[:6]

    def mac(self, uid: bytes, data: bytes) -> bytes:
        return hmac.new(self.master, b"campus-vending|record|" + uid + data, hashlib.sha256).digest()[:6]

    def __repr__(self) -> str:  # never show the key
        return "Sam(master=<hidden>)"


@dataclass(frozen=True)
class CardRecord:
    """What the issuer wrote on the card at issuance (block 6)."""

    profile: str
    school: str  # the school's code, as the machine config names it
    issued: date

    def encode(self, uid: bytes, sam: Sam) -> bytes:
        if self.profile not in PROFILES:
            raise CardError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}", "profile")
        if not SCHOOL_CODE.fullmatch(self.school):  # the machine config's school code, which the record holds
            raise CardError(f"school code {self.school!r}: a school code is {SCHOOL_CODE_RULE}", "school")
        school = self.school.encode("ascii")
        body = bytes([RECORD_FORMAT, PROFILES.index(self.profile)]) + school.ljust(6, b"\x00")
        body += struct.pack("<H", (self.issued - EPOCH).days)
        return body + sam.mac(uid, body)

    @classmethod
    def decode(cls, uid: bytes, block: bytes, sam: Sam) -> CardRecord:
        body, mac = block[:10], block[10:16]
        if not hmac.compare_digest(mac, sam.mac(uid, body)):
            raise CardError("the card record's MAC is not the issuer's: not a card the issuer wrote")
        if body[0] != RECORD_FORMAT or body[1] >= len(PROFILES):
            raise CardError(f"unknown card record format {body[0]} or profile {body[1]}")
        days = struct.unpack("<H", body[8:10])[0]
        school = body[2:8].rstrip(b"\x00").decode("ascii")
        return cls(PROFILES[body[1]], school, date.fromordinal(EPOCH.toordinal() + days))


@dataclass(frozen=True)
class LogEntry:
    """One step in the card's own log (16 bytes): so limits hold across every machine the card meets."""

    counter: int  # the card's transaction counter after this step
    at: datetime
    machine: bytes  # 2 bytes: a hash of the machine or terminal id (the log has no room for the id itself)
    day_spent: int  # spent on the card on the local day of ``at``, this step included (a guardian's daily limit)
    amount: int  # taken: a debit; negative: a credit (a top-up, or a refund of a debit not vended)
    balance: int  # after the step

    def encode(self) -> bytes:
        return struct.pack(
            LOG_FORMAT, self.counter, int(self.at.timestamp()), self.machine, self.day_spent, self.amount, self.balance
        )

    @classmethod
    def decode(cls, block: bytes) -> LogEntry | None:
        counter, seconds, machine, day_spent, amount, balance = struct.unpack(LOG_FORMAT, block)
        if counter == 0:
            return None  # an empty slot
        return cls(counter, datetime.fromtimestamp(seconds, UTC), machine, day_spent, amount, balance)


LOG_FORMAT = "<HI2sHhi"
MAX_DAY_SPENT = 0xFFFF


def step_mac(sam: Sam, uid: bytes, counter: int, amount: int, balance: int) -> str:
    """The SAM's MAC over a step as the issuer settles it (counter, amount, balance after; never its time)."""
    return sam.mac(uid, b"step" + struct.pack("<Hhi", counter, amount, balance)).hex()


def machine_tag(machine_id: str) -> bytes:
    """A machine's 2 bytes in the log: a hash, its top bit clear (set, the field names a pending credit)."""
    digest = hashlib.sha256(machine_id.encode()).digest()
    return bytes([digest[0] & 0x7F, digest[1]])


def credit_tag(seq: int) -> bytes:
    """The log's machine field for the issuer's pending credit ``seq`` (so any machine can tell it was applied)."""
    if not 0 < seq < CREDIT_FLAG:
        raise CardError(f"a pending credit's seq is 1..{CREDIT_FLAG - 1}, not {seq}")
    return (CREDIT_FLAG | seq).to_bytes(2, "big")


def credit_seq(entry: LogEntry) -> int | None:
    """The pending credit a committed log entry applied, if it applied one."""
    field = int.from_bytes(entry.machine, "big")
    return field & (CREDIT_FLAG - 1) if field & CREDIT_FLAG and entry.amount < 0 else None


@dataclass(frozen=True)
class PurseState:
    """A card as a reader finds it: who it is for, its balance and backup, its recent debits."""

    uid: bytes
    record: CardRecord
    balance: int
    backup: int
    log: tuple[LogEntry, ...]  # newest first
    credits: int = 0  # the highest seq of the issuer's pending credits this card was given

    @property
    def counter(self) -> int:
        return self.log[0].counter if self.log else 0

    def spent_on(self, day: date) -> int:
        """What the card says it spent on ``day`` (a card day, ``card_day``) on every machine together."""
        return spent_on(self.log, day)

    def entry(self, counter: int) -> LogEntry | None:
        """The log entry of step #``counter``, while the three-slot log still holds it."""
        return next((entry for entry in self.log if entry.counter == counter), None)


def card_day(at: datetime) -> date:
    """The day a log entry counts towards: the issuer's local day, the same on every machine and store."""
    return at.astimezone(CARD_ZONE).date()


def spent_on(log: tuple[LogEntry, ...], day: date) -> int:
    """The newest entry's day spend if it is of ``day``: each step carries the day's total forward."""
    newest = log[0] if log else None
    return newest.day_spent if newest is not None and card_day(newest.at) == day else 0


def next_entry(
    state: PurseState, amount: int, terminal: str, at: datetime, refund: bool = False, tag: bytes | None = None
) -> LogEntry:
    """The log entry of the next step: ``amount`` taken (negative: credited; ``refund``: a debit given back).

    ``tag``: the machine field, when it is not the terminal's (a pending credit's ``credit_tag``).
    """
    if state.counter >= COUNTER_LIMIT:
        raise CardError(f"card {state.uid.hex().upper()}: its transaction counter is spent; the issuer replaces it")
    spent = state.spent_on(card_day(at))
    spent = min(MAX_DAY_SPENT, spent + amount) if amount > 0 else max(0, spent + amount) if refund else spent
    at = at.replace(microsecond=0)
    return LogEntry(state.counter + 1, at, tag or machine_tag(terminal), spent, amount, state.balance - amount)


def log_slot(counter: int) -> int:
    """The log block a step with ``counter`` is written to (the log is cyclic)."""
    return LOG_BLOCKS[counter % len(LOG_BLOCKS)]


def uid_problem(uid: bytes) -> str | None:
    """Why no MIFARE Classic 1K can carry ``uid``, or None.

    Its length is 4 (single size) or 7 (double size). ISO/IEC 14443-3 reserves 0x88, the cascade tag
    a card sends before the rest of a longer uid, so no uid starts with it, and since Amendment 1
    (2005) a double-size uid's fourth byte is not 0x88 either (it would read as a triple-size uid's
    cascade at level 2): a reader could not tell such a card's uid from another's.
    """
    if len(uid) not in UID_BYTES:
        return "a MIFARE Classic 1K campus card has a 4- or 7-byte uid"
    if uid[0] == CASCADE_TAG or (len(uid) == 7 and uid[3] == CASCADE_TAG):
        where = "first" if uid[0] == CASCADE_TAG else "fourth"
        return f"its {where} byte is 88, the cascade tag ISO/IEC 14443-3 keeps out of a uid there"
    return None


def blank_image(uid: bytes) -> bytearray:
    """A 1K card as delivered: the manufacturer block, zeros, transport keys and access bits everywhere.

    Block 0 as NXP lays it out: a 4-byte NUID with its check byte, SAK 08 and ATQA 0004; or a 7-byte
    uid (MF1S50yyX/V1), SAK 08 and ATQA 0044, as ``nfc-mfclassic`` dumps them.
    """
    if (problem := uid_problem(uid)) is not None:
        raise CardError(problem, "uid")
    image = bytearray(MEMORY)
    if len(uid) == 4:
        bcc = uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
        image[0:16] = uid + bytes([bcc, 0x08, 0x04, 0x00]) + bytes.fromhex("6263646566676869")
    else:
        image[0:16] = uid + bytes([0x08, 0x44, 0x00]) + bytes.fromhex("626364656667")
    for sector in range(16):
        start = trailer_of(sector) * BLOCK
        image[start : start + BLOCK] = trailer(TRANSPORT_KEY, TRANSPORT, TRANSPORT_KEY)
    return image


def image_uid(image: bytes | bytearray) -> bytes:
    """The uid in an image's block 0 (4-byte: check byte, SAK 08, ATQA 0004; 7-byte: SAK 08, ATQA 0044)."""
    if image[4] == image[0] ^ image[1] ^ image[2] ^ image[3] and image[5:8] == b"\x08\x04\x00":
        return bytes(image[0:4])
    if image[7:10] == b"\x08\x44\x00":
        return bytes(image[0:7])
    raise CardError("block 0 is neither a 4-byte uid with its check byte nor a 7-byte uid (SAK 08, ATQA 0044)")


def block(image: bytes | bytearray, number: int) -> bytes:
    return bytes(image[number * BLOCK : (number + 1) * BLOCK])


def put(image: bytearray, number: int, data: bytes) -> None:
    image[number * BLOCK : (number + 1) * BLOCK] = data


def issue_image(uid: bytes, record: CardRecord, purse: int, sam: Sam) -> bytes:
    """A new card: the purse, its backup, the issuer's record, an empty log, each sector under its own keys."""
    if not 0 <= purse <= MAX_BALANCE:
        raise CardError(f"a purse holds 0 to {MAX_BALANCE}, not {purse}", "purse")
    image = blank_image(uid)
    put(image, BALANCE, encode_value(purse, BALANCE))
    put(image, BACKUP, encode_value(purse, BACKUP))
    put(image, RECORD, record.encode(uid, sam))
    put(image, CREDITS, encode_value(0, CREDITS))
    put(image, CREDITS_BACKUP, encode_value(0, CREDITS_BACKUP))
    for sector, access in ((PURSE_SECTOR, VALUE_SECTOR), (LOG_SECTOR, LOG_ACCESS), (CREDIT_SECTOR, VALUE_SECTOR)):
        put(image, trailer_of(sector), trailer(sam.key_a(uid, sector), access, sam.key_b(uid, sector)))
    return bytes(image)


def read_image(image: bytes, sam: Sam) -> PurseState:
    """The purse in a whole card image (an .mfd dump); ``CardError`` naming what is wrong."""
    if len(image) != MEMORY:
        raise CardError(f"a MIFARE Classic 1K image is {MEMORY} bytes, not {len(image)}")
    uid = image_uid(image)
    record = CardRecord.decode(uid, block(image, RECORD), sam)
    try:
        balance, _ = decode_value(block(image, BALANCE))
        backup, _ = decode_value(block(image, BACKUP))
    except FormatError as exc:
        raise CardError(f"purse: {exc}") from None
    entries = [entry for entry in (LogEntry.decode(block(image, n)) for n in LOG_BLOCKS) if entry is not None]
    entries.sort(key=lambda entry: entry.counter, reverse=True)
    return PurseState(
        uid, record, balance, backup, tuple(entries), credits_given(block(image, CREDITS), block(image, CREDITS_BACKUP))
    )


def credits_given(marker: bytes, backup: bytes) -> int:
    """The highest pending credit applied, from its block (or, torn in its TRANSFER, from the backup)."""
    try:
        return decode_value(marker)[0]
    except FormatError:
        return decode_value(backup)[0]


def credit_refusal(balance: int | None, amount: int) -> str | None:
    """Why a purse holding ``balance`` cannot take ``amount`` in one credit (a top-up, a refund); None if it can.

    With ``balance`` None (not read yet: a top-up checked before its card is tapped) only what no purse
    could take is refused; that message said "from NT$0" of a purse holding NT$500.
    """
    if amount <= 0:
        return f"a credit is a positive amount, not {amount}"
    if balance is None:
        if amount > MAX_BALANCE:  # MAX_STEP > MAX_BALANCE: the ceiling says it
            return f"a credit of NT${amount} is more than any purse holds, NT${MAX_BALANCE}"
        return None
    if amount > MAX_STEP or balance + amount > MAX_BALANCE:
        return f"a credit of NT${amount} would take the purse from NT${balance} past its ceiling of NT${MAX_BALANCE}"
    return None


def topup_image(image: bytes, amount: int, sam: Sam, terminal: str, at: datetime) -> bytes:
    """A convenience-store top-up written into an image: the same three writes ``purse_io.credit`` makes.

    Backup := the old balance, the log entry with the amount negative, balance + amount (key B's
    right); the record is untouched. The counter numbers the top-up, as it does every debit.
    """
    state = read_image(image, sam)
    if (refusal := credit_refusal(state.balance, amount)) is not None:
        raise CardError(refusal, "amount")
    entry = next_entry(state, -amount, terminal, at)
    out = bytearray(image)
    put(out, BACKUP, encode_value(state.balance, BACKUP))
    put(out, log_slot(entry.counter), entry.encode())
    put(out, BALANCE, encode_value(entry.balance, BALANCE))
    return bytes(out)


def keys_image(image: bytes, sam: Sam) -> bytes:
    """The card's keys in the form ``nfc-mfclassic`` takes (an .mfd whose trailers hold keys A and B)."""
    uid = image_uid(image)
    out = bytearray(image)
    for sector in range(16):
        number = trailer_of(sector)
        current = block(out, number)
        if sector in (PURSE_SECTOR, LOG_SECTOR, CREDIT_SECTOR):
            put(out, number, sam.key_a(uid, sector) + current[6:10] + sam.key_b(uid, sector))
        else:
            put(out, number, TRANSPORT_KEY + current[6:10] + TRANSPORT_KEY)
    return bytes(out)
