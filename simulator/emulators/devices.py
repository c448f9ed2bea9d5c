"""PN532, RDM6300 and text-line reader devices behind a PtyPort, with cards placed and removed.

Each device is a thread that blocks on its port until the host writes or something changes: no
polling loop runs while nothing happens. The PN532 device does the HSU side (frames, ACK/NACK,
wake-up, serial speed, the host's abort) around ``Pn532Chip``, which answers the commands; it
decodes the host's frames with the same pure framer the project's driver uses.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Self

from firmware.cards.mifare import MEMORY
from firmware.cards.purse import CardError, image_uid
from firmware.domain import WHOLE_NUMBER
from firmware.errors import VendingError
from firmware.files import IMAGE_FILE_BYTES, read_capped
from firmware.readers import line_frames, rdm6300_frames
from firmware.readers import pn532_frames as f
from firmware.readers.registry import protocol_of
from firmware.threads import daemon
from simulator.emulators.mifare_classic import ClassicCard
from simulator.emulators.pn532_chip import Pending, Pn532Chip
from simulator.emulators.pty_port import PtyPort
from simulator.safe_output import replace_file

RDM6300_REPEAT_S = 0.1  # the module repeats the tag's frame while the tag is in the field
FAULTS = ("noise", "split", "corrupt", "silent", "clear")
CONTROL_ARGS: dict[str, tuple[str, ...]] = {  # each control line's verb and its arguments
    "place": ("UID",),
    "tap": ("UID",),
    "remove": (),
    "fault": ("|".join((*FAULTS, "tear N")),),  # tear N: the card leaves after its N-th write (--cards)
    "unplug": (),
    "replug": (),
    "help": (),
}
CONTROL_HELP = "commands: " + "; ".join(" ".join([verb, *args]) for verb, args in CONTROL_ARGS.items())


class Device:
    """A card field and a port; subclasses say what goes on the wire."""

    protocol = "device"  # a name in firmware.readers.registry.PROTOCOLS: its baud rate comes from there

    def __init__(self, link: Path | None = None, seed: int = 0, pace: bool = False) -> None:
        self.port = PtyPort(link, seed, protocol_of(self.protocol).baud, pace)
        self.card: str | None = None
        self.lift_after_read = False
        self.reads = 0
        self.silent = False
        self.corrupt_next = False
        self._stop = threading.Event()
        self._thread = daemon(self._run, f"{self.protocol}-emulator")

    @property
    def path(self) -> str:
        return self.port.path

    def start(self) -> Self:
        self._thread.start()
        return self

    def place(self, uid: str, lift: bool = False) -> None:
        """The card on the reader; ``lift``: taken away as soon as the host has read it once (a tap)."""
        self.card, self.lift_after_read = uid.upper(), lift
        self.port.wake()

    def remove(self) -> None:
        self.card = None
        self.port.wake()

    def tap(self, uid: str) -> None:
        """Place, and lift as soon as the host has read the card once."""
        self.place(uid, lift=True)

    def card_read(self) -> None:
        self.reads += 1
        if self.lift_after_read:
            self.card, self.lift_after_read = None, False

    def stop(self) -> None:
        self._stop.set()
        self.port.wake()
        if self._thread.ident is not None:  # stopped before it started (a SIGTERM then): nothing to wait for
            self._thread.join(timeout=5)
        self.port.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()

    def step(self) -> None:
        raise NotImplementedError

    def command(self, line: str) -> str:
        """One control line, checked before anything changes; a bad one is answered ``error: ...``, never raised."""
        words = line.split()
        if not words:
            return ""
        verb, args = words[0], words[1:]
        if verb == "fault" and args[:1] == ["tear"]:
            return (
                self.tear(args[1]) if len(args) == 2 else "error: fault tear takes the number of writes: fault tear N"
            )
        wanted = CONTROL_ARGS.get(verb)
        if wanted is None:
            return f"error: unknown command {verb!r}; {CONTROL_HELP}"
        if len(args) != len(wanted):
            usage = " ".join([verb, *wanted])
            return f"error: {verb} takes {len(wanted) or 'no'} argument(s): {usage}"
        if verb == "help":
            return CONTROL_HELP
        if verb in ("place", "tap"):
            wrong = self.unreadable(args[0])
            if wrong:
                return f"error: {verb} {args[0]}: {wrong}"
            getattr(self, verb)(args[0])
        elif verb == "fault":
            if args[0] not in FAULTS:
                return f"error: unknown fault {args[0]!r}; one of {', '.join(FAULTS)}"
            self.fault(args[0])
        elif verb in ("unplug", "replug"):
            return self._cable(verb)
        else:
            self.remove()
        return "ok"

    def _cable(self, verb: str) -> str:
        """``unplug`` or ``replug``: each only from the other state; a replug whose link is taken meanwhile is named.

        A ``replug`` while plugged in stopped the emulator: its own link, to its own open pty, was refused
        as another emulator's (and before that check, it opened a second pty and leaked the first).
        """
        if (verb == "replug") == self.port.plugged:
            return f"error: {verb}: the reader is {'plugged in' if self.port.plugged else 'unplugged'} already"
        if verb == "unplug":
            self.unplug()
            return "ok"
        try:
            return f"replugged at {self.port.plug()}"
        except VendingError as exc:
            return f"error: replug: {exc}"

    def unreadable(self, uid: str) -> str:
        """Why this reader could not read a card ``uid``, or an empty string: hex, of a size the protocol reads."""
        sizes = protocol_of(self.protocol).uid_bytes
        try:
            size = len(bytes.fromhex(uid))
        except ValueError:
            size = -1
        if size in sizes:
            return ""
        return (
            f"a uid is {' or '.join(map(str, sizes))} bytes in hex for a {self.protocol} reader, e.g. {'04' * sizes[0]}"
        )

    def unplug(self) -> None:
        """The cable is pulled: the port goes away and the device loses power."""
        self.port.unplug()

    def tear(self, count: str) -> str:
        """``fault tear N``: the card in the field leaves right after its N-th write from now (pulled away)."""
        return f"error: fault tear {count}: only a pn532 reader with card images (--cards DIR) writes to cards"

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
        self.port.wake()


class PN532Device(Device):
    """The chip on its HSU: every command frame is ACKed, then answered when the chip is done.

    A search that finds nothing yet (InListPassiveTarget with retries left, InAutoPoll) waits for a
    card, its time limit, or the host's ACK, which aborts it. A sleeping chip (after PowerDown) wakes
    on the first byte and loses it, as the HSU wake-up does. After answering SetSerialBaudRate, the
    chip moves to the new speed once the host ACKs (a pty carries bytes at any speed; the speed
    sets the pacing). Which speed the host's end is set to is not checked: the termios settings can
    be read only after the fact, when the host may already have switched for the next frame.
    """

    protocol = "pn532"

    def __init__(self, link: Path | None = None, seed: int = 0, pace: bool = False, cards: Path | None = None) -> None:
        super().__init__(link, seed, pace)
        self.cards = cards  # DIR/<UID>.mfd: loaded when placed, written back when removed
        self.image: ClassicCard | None = None
        self.chip = self._new_chip([])
        self.buffer = b""
        self.last_response = b""
        self.searching_for: int | None = None  # the command whose search is pending (InListPassiveTarget, InAutoPoll)
        self.deadline: float | None = None  # when that search gives up (None: it never does)

    @property
    def commands(self) -> list[int]:
        return self.chip.commands

    def _new_chip(self, commands: list[int]) -> Pn532Chip:
        return Pn532Chip(lambda: self.card, self._image_of, commands=commands, on_read=self.card_read)

    def _image_of(self, uid: str) -> ClassicCard | None:
        return self.image if self.image is not None and self.image.uid.hex().upper() == uid else None

    def unreadable(self, uid: str) -> str:
        wrong = super().unreadable(uid)
        if wrong or self.cards is None:
            return wrong
        path = self.cards / f"{uid.upper()}.mfd"
        if not path.exists():
            return f"no card image {path} (make one with `vending card issue`)"
        if path.stat().st_size != MEMORY:
            return f"{path}: a MIFARE Classic 1K image is {MEMORY} bytes, not {path.stat().st_size}"
        try:  # the card is written back under the uid its block 0 holds: another card's file would be replaced
            held = image_uid(read_capped(path, IMAGE_FILE_BYTES)).hex().upper()
        except CardError as exc:
            return f"{path}: {exc}"
        if held != uid.upper():
            return f"{path}: the image is card {held}'s, not {uid.upper()}'s"
        return ""

    def place(self, uid: str, lift: bool = False) -> None:
        self._write_back()
        if self.cards is not None:
            image = bytearray(read_capped(self.cards / f"{uid.upper()}.mfd", IMAGE_FILE_BYTES))
            self.image = ClassicCard(image)
        super().place(uid, lift)

    def remove(self) -> None:
        super().remove()
        self._write_back()

    def tear(self, count: str) -> str:
        if self.image is None or self.card is None:
            return "error: fault tear: no card image in the field (place one from --cards DIR first)"
        if not WHOLE_NUMBER.fullmatch(count) or int(count) < 1:
            return f"error: fault tear takes a number of writes from 1, got {count!r}"
        self.image.writes, self.image.tear_after = 0, int(count)
        return "ok"

    def handle_torn(self) -> None:
        """A card pulled away mid-transaction (``fault tear N``) leaves the field with what was written to it."""
        if self.image is not None and self.image.torn:
            self.remove()

    def _write_back(self) -> None:
        """The card leaves the field: what was written to it is in its image file, as on the real card."""
        image, self.image = self.image, None
        if image is not None and self.cards is not None:
            replace_file(self.cards / f"{image.uid.hex().upper()}.mfd", bytes(image.image))

    def unplug(self) -> None:
        """Without power the chip forgets everything: it comes back as after reset (the command log stays)."""
        super().unplug()
        self.chip = self._new_chip(self.chip.commands)
        self.buffer, self.last_response, self.searching_for = b"", b"", None

    def step(self) -> None:
        searching = self.searching_for is not None
        timeout = None if not searching or self.deadline is None else max(0.0, self.deadline - time.monotonic())
        data = self.port.read(timeout)
        if data and self.chip.asleep:
            data = data[1:]  # the byte that wakes the chip is lost
            self.chip.asleep = False
        self.buffer += data
        while self.buffer:
            consumed, frame = f.decode(self.buffer)
            if consumed == 0:
                break
            if self.port.pace:  # the frame has only just arrived: its bytes took the wire time
                time.sleep(self.port.wire_time(consumed))
            self.buffer = self.buffer[consumed:]
            if frame is not None and not self.silent:
                self.handle(frame)
        if self.searching_for is not None:
            self._search_on(self.searching_for)

    def handle(self, frame: f.Frame) -> None:
        if isinstance(frame, f.Ack):
            if self.searching_for is not None:
                self.chip.abort()
                self.searching_for = None
            speed = self.chip.host_acked()
            if speed is not None:
                self.port.baud = speed
        elif isinstance(frame, f.Nack):
            self.port.write(self.last_response)  # resend the last response
        elif isinstance(frame, f.Info) and frame.tfi == f.HOST:
            self.port.write(f.encode(f.Ack()))
            self.searching_for = None
            self._answer(frame.command, self.chip.execute(frame.command, frame.params))
            self.handle_torn()
        elif isinstance(frame, f.Corrupt):
            self.port.write(f.encode(f.Nack()))

    def _search_on(self, code: int) -> None:
        """Woken, timed out or fed while searching: look at the field again, or give up when time is out."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._answer(code, self.chip.give_up())
        else:
            self._answer(code, self.chip.retry())

    def _answer(self, code: int, reply: bytes | None | Pending) -> None:
        if isinstance(reply, Pending):
            if self.searching_for is None:  # a new search; a retry keeps the first deadline
                self.searching_for = code
                self.deadline = None if reply.timeout_s is None else time.monotonic() + reply.timeout_s
            return
        self.searching_for = None
        response = f.ErrorFrame() if reply is None else f.response(code, reply)
        wire = f.encode(response)
        self.last_response = wire
        if self.corrupt_next:
            self.corrupt_next = False
            wire = wire[:-2] + bytes([(wire[-2] + 1) & 0xFF, 0])
        self.port.write(wire)


class RDM6300Device(Device):
    """125 kHz module: repeats the tag's frame while it is in the field (every 100 ms)."""

    protocol = "rdm6300"

    def step(self) -> None:
        card = self.card
        if card is None or self.silent:
            self.port.read(None)  # the host sends nothing: sleep until a card, a fault or an unplug
            return
        uid = card if len(card) == 10 else ("00" + card)[-10:]
        wire = rdm6300_frames.encode(rdm6300_frames.Tag(uid))
        if self.corrupt_next:
            self.corrupt_next = False
            wire = wire[:11] + b"00" + wire[13:]
        self.port.write(wire)
        self.card_read()
        self.port.read(RDM6300_REPEAT_S)


class LineDevice(Device):
    """A reader that types the uid and a line end, once per presentation."""

    protocol = "line"

    def __init__(
        self, link: Path | None = None, seed: int = 0, pace: bool = False, fmt: line_frames.LineFormat | None = None
    ) -> None:
        super().__init__(link, seed, pace)
        self.fmt = fmt or line_frames.LineFormat()
        self.sent: str | None = None

    def step(self) -> None:
        card = self.card
        if card is not None and card != self.sent and not self.silent:
            self.port.write(line_frames.encode(line_frames.Uid(card), self.fmt))
            self.sent = card
            self.card_read()
        elif card is None:
            self.sent = None
        self.port.read(None)


# an emulator for every serial reader protocol the firmware declares (a test keeps the two lists equal)
DEVICES: dict[str, type[Device]] = {device.protocol: device for device in (PN532Device, RDM6300Device, LineDevice)}
