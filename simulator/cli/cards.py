"""``vending card ...``: campus stored-value cards as MIFARE Classic 1K images (.mfd), the issuer's tools.

``issue`` writes a new card, ``show`` decodes one (checking the issuer's MAC), ``topup`` is the
convenience store's credit, ``keys`` writes the card's keys as ``nfc-mfclassic`` takes them. Every
sector key comes from the issuer's card master key in the key directory (firmware/cards/purse.py).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from firmware.cards.purse import (
    CardError,
    CardRecord,
    PurseState,
    Sam,
    credit_refusal,
    issue_image,
    keys_image,
    read_image,
    topup_image,
)
from firmware.domain import MACHINE_ID, MACHINE_ID_RULE
from firmware.errors import VendingError
from firmware.files import IMAGE_FILE_BYTES, read_capped
from firmware.identity.keyset import read_card_master
from simulator.cli.exits import fail, seconds_option, unwritable
from simulator.safe_output import write_inside

card_app = typer.Typer(no_args_is_help=True, help="Campus stored-value cards as MIFARE Classic 1K images (.mfd).")

Keys = Annotated[Path, typer.Option(help="The key directory `vending keys dev-set` writes (card-master.key).")]
Image = Annotated[Path, typer.Argument(help="A card image: a 1,024-byte MIFARE Classic 1K dump (.mfd).")]


def _sam(keys: Path) -> Sam:
    try:
        return Sam(read_card_master(keys))
    except VendingError as exc:
        fail(exc)


def _load(image: Path, keys: Path) -> tuple[Sam, bytes, PurseState]:
    """The issuer's SAM, the image's bytes and the purse in them; exit 2 naming the file and the reason."""
    sam = _sam(keys)
    try:
        raw = read_capped(image, IMAGE_FILE_BYTES)
    except OSError as exc:
        fail(f"{image}: {exc.strerror or exc}")
    try:
        return sam, raw, read_image(raw, sam)
    except CardError as exc:
        fail(f"{image}: {exc}")


def _write(out: Path, data: bytes, *, option: str = "--out", mode: int = 0o644, replace: bool = False) -> None:
    """Never through a symlink; a new file unless ``replace`` (a top-up rewrites its card image, whole or not at all).

    A directory that is not there is not made: a mistyped path is named, with its option, not created.
    """
    if not out.parent.is_dir():
        fail(f"{option} {out}: {out.parent} is not a directory; nothing written")
    try:
        write_inside(out.parent, out.name, data, replace=replace, mode=mode)
    except FileExistsError:
        fail(f"{option} {out}: exists; nothing written (give a new {option})")
    except VendingError as exc:
        fail(exc)
    except OSError as exc:
        unwritable(f"{option} {out}", exc)


@card_app.command("issue")
def issue(
    uid: Annotated[str, typer.Option(help="The card's 4- or 7-byte uid in hex, e.g. 04A1B2C3.")],
    keys: Keys,
    out: Annotated[Path, typer.Option(help="Where to write the card image (.mfd); never overwritten.")],
    profile: Annotated[str, typer.Option(help="student | staff")] = "student",
    purse: Annotated[int, typer.Option(min=0, help="The balance to load, in NT$.")] = 0,
    school: Annotated[str, typer.Option(help="The school's code (1-6 letters or digits).")] = "353301",
) -> None:
    """Issue a card: the purse and its backup, the issuer's record (profile, school, MAC), every key diversified."""
    try:
        raw = bytes.fromhex(uid)
    except ValueError:
        fail(f"--uid {uid!r}: hex digits, e.g. 04A1B2C3")
    sam = _sam(keys)
    try:
        image = issue_image(raw, CardRecord(profile, school, date.today()), purse, sam)
    except CardError as exc:
        fail(f"--{exc.field or 'uid'}: {exc}")
    _write(out, image)
    typer.echo(f"issued card {raw.hex().upper()} ({profile}, school {school}) with NT${purse} -> {out}")


def _document(state: PurseState) -> dict[str, Any]:
    return {
        "uid": state.uid.hex().upper(),
        "profile": state.record.profile,
        "school": state.record.school,
        "issued": state.record.issued.isoformat(),
        "purse": state.balance,
        "backup": state.backup,
        "counter": state.counter,
        "log": [
            {
                "counter": e.counter,
                "at": e.at.isoformat(),
                "machine": e.machine.hex(),
                "amount": e.amount,
                "balance": e.balance,
            }  # fmt: skip
            for e in state.log
        ],
    }


@card_app.command("show")
def show(
    image: Image,
    keys: Keys,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: uid, profile, purse, log, ...")] = False,
) -> None:
    """Decode a card image: who it is for, its purse and backup, its last debits; the issuer's MAC is checked."""
    _, _, state = _load(image, keys)
    body = _document(state)
    if as_json:
        typer.echo(json.dumps(body))
        return
    typer.echo(f"card {body['uid']}: {body['profile']}, school {body['school']}, issued {body['issued']}")
    typer.echo(f"purse NT${body['purse']} (backup NT${body['backup']}), {len(body['log'])} debit(s) logged")
    for entry in body["log"]:
        step = f"{-entry['amount']:+d} -> {entry['balance']}"  # a debit shows as -25, a credit as +200
        typer.echo(f"  #{entry['counter']} {entry['at']} machine {entry['machine']}: {step}")


@card_app.command("topup")
def topup(
    keys: Keys,
    amount: Annotated[int, typer.Option(help="NT$ to add (a convenience-store top-up).")],
    image: Annotated[Path | None, typer.Argument(help="A card image (.mfd) to credit; or give --reader.")] = None,
    reader: Annotated[
        str | None, typer.Option(help="Credit the card tapped on this PN532 reader instead, e.g. pn532:/dev/ttyUSB0.")
    ] = None,
    terminal: Annotated[str, typer.Option(help="This terminal's id, as the card's log records it.")] = "topup",
    wait: Annotated[float, typer.Option(help="Seconds to wait for a card on --reader.")] = 30.0,
) -> None:
    """Credit the purse with key B: on an image, or on the card tapped on a reader (logged on the card).

    Either way it is the card's own credit (firmware/cards/purse_io.py): backup, a log entry under the
    card's counter, then the balance; through a reader with INCREMENT and TRANSFER, read back, and a
    card lifted half-way is finished or undone at its next tap.
    """
    if (image is None) == (reader is None):
        fail("give a card image or --reader URL (one of them)")
    seconds_option(wait)
    if not MACHINE_ID.fullmatch(terminal):  # '' and any text were logged on the card as a terminal
        fail(f"--terminal {terminal[:40]!r}: a terminal's id is {MACHINE_ID_RULE}, as a machine's")
    if (refusal := credit_refusal(None, amount)) is not None:  # no purse takes it: said before a card is waited for
        fail(f"--amount: {refusal}")
    if reader is not None:
        _topup_on_reader(reader, keys, amount, terminal, wait)
        return
    assert image is not None
    sam, raw, before = _load(image, keys)
    try:
        after = topup_image(raw, amount, sam, terminal, datetime.now(UTC))
    except CardError as exc:
        fail(f"--amount: {exc}")
    _write(image, after, option="IMAGE", replace=True)
    typer.echo(f"card {before.uid.hex().upper()}: NT${before.balance} + {amount} = NT${before.balance + amount}")


def _topup_on_reader(url: str, keys: Path, amount: int, terminal: str, wait: float) -> None:
    """Wait for a card on the reader, then credit it through a card session."""
    from firmware.cards.purse_io import credit
    from firmware.cards.tag import CardGone, CardRefused
    from firmware.clock import SystemClock
    from firmware.readers.pn532 import PN532Reader
    from firmware.readers.registry import open_reader

    sam, clock = _sam(keys), SystemClock()
    try:
        device = open_reader(url, clock)
    except VendingError as exc:
        fail(f"--reader: {exc}")
    if not isinstance(device, PN532Reader):
        fail(f"--reader {url}: a card is written through a pn532 reader")
    try:
        deadline = time.monotonic() + wait
        tap = None
        while tap is None and time.monotonic() < deadline:
            tap = device.read_tap(0.2)
        if tap is None:
            fail(f"--reader {url}: no card within {wait:g} s")
        with device.card_session(tap.uid) as tag:
            after = credit(tag, sam, amount, terminal, clock.now())
    except CardGone:
        fail("the card left the reader during the top-up: tap it again, the next tap finishes or undoes it")
    except (CardRefused, CardError) as exc:
        fail(f"the card refused the top-up: {exc}")
    finally:
        device.close()
    typer.echo(f"card {after.uid.hex().upper()}: NT${after.backup} + {amount} = NT${after.balance} (#{after.counter})")


@card_app.command("keys")
def keys_of(
    image: Image,
    keys: Keys,
    out: Annotated[Path, typer.Option(help="Where to write the keys (.mfd, for `nfc-mfclassic r a u DUMP KEYS`).")],
) -> None:
    """Write this card's keys in a dump that nfc-mfclassic takes as its KEYS file (0600: it opens the card)."""
    sam, raw, state = _load(image, keys)
    _write(out, keys_image(raw, sam), mode=0o600)
    typer.echo(f"keys of card {state.uid.hex().upper()} -> {out}")
