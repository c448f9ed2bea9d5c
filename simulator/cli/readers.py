"""``vending reader emulate`` and ``vending serve``."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from firmware.app.console import EventPrinter
from firmware.app.keypad import KEYPAD_HELP, keypad_lines
from firmware.app.main import console_hardware, console_machine, machine_link
from firmware.app.main import run as run_machine
from firmware.app.node import Node
from firmware.clock import SystemClock
from firmware.config.machine import with_payment_mode
from firmware.config.source import MAX_FILE_BYTES, Strict, read_yaml, validate
from firmware.errors import VendingError
from firmware.files import read_capped
from firmware.identity.keys import key_path
from firmware.readers.registry import READER_URL_HELP, check_reader_for
from simulator.cli.connection import CaFile, CertFile, CertKey, Password, Username, broker_address
from simulator.cli.exits import fail, stop_on_sigterm
from simulator.emulators.devices import DEVICES, Device, PN532Device
from simulator.hardware.serial_ports import PortInfo, list_ports
from simulator.hardware.serial_ports import probe as probe_port
from simulator.scenarios.card_specs import CardSpec
from simulator.scenarios.purses import install_card_master
from simulator.scenarios.stations import issue_cards
from simulator.term_keys import simulation_term_key

MAX_SLEEP_S = 86_400  # a control script's longest pause: a day

reader_app = typer.Typer(no_args_is_help=True, help="Card-reader device emulators on pseudo-terminals.")


@reader_app.command("emulate")
def emulate(
    protocol: Annotated[str, typer.Option(help="pn532 | rdm6300 | line")],
    link: Annotated[Path | None, typer.Option(help="A stable symlink to the pty (kept across replug).")] = None,
    script: Annotated[Path | None, typer.Option(help="Read control lines from this file instead of stdin.")] = None,
    pace: Annotated[
        bool,
        typer.Option(
            "--pace", help="Send bytes at the speed of a real UART at the device's baud (a pty has no speed)."
        ),
    ] = False,
    cards: Annotated[
        Path | None,
        typer.Option(help="pn532: card images DIR/<UID>.mfd, loaded on `place UID`, written back on `remove`."),
    ] = None,
) -> None:
    """Open a pseudo-terminal that behaves as the reader, driven by control lines.

    Control lines on stdin (or --script): `place UID`, `remove`, `tap UID` (place until read once),
    `fault noise|split|corrupt|silent|clear`, `fault tear N` (with --cards: the card leaves after its N-th
    write), `unplug`, `replug`, `sleep SECONDS`, `help`, `quit`. A line that is not one of these is
    answered `error: ...` and changes nothing.
    It stops at `quit`, at the end of its control lines, or on SIGTERM, and removes its link.
    """
    if protocol not in DEVICES:
        fail(f"--protocol: unknown {protocol!r}; known: {', '.join(DEVICES)}")
    if cards is not None and protocol != "pn532":
        fail(f"--cards {cards}: card images are MIFARE cards, for --protocol pn532 only (not {protocol})")
    if cards is not None and not cards.is_dir():
        fail(f"--cards {cards}: no such directory (of card images, <UID>.mfd: `vending card issue` makes them)")
    try:  # read before the device starts: a script that is not there starts nothing
        lines = read_capped(script, MAX_FILE_BYTES).decode("utf-8").splitlines() if script else sys.stdin
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--script {script}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    stop_on_sigterm()  # a `kill` stops it as `quit` does: the device closes and its link goes
    device: Device | None = None
    try:  # from the link's making: a SIGTERM just after the first line is printed removes it too
        device = PN532Device(link, pace=pace, cards=cards) if cards else DEVICES[protocol](link, pace=pace)
        device.start()
        typer.echo(f"{protocol} reader on {device.path}" + (f" (link {link})" if link else ""), err=False)
        sys.stdout.flush()
        for line in lines:
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "quit":
                break
            if words[0] == "sleep":
                try:
                    seconds = float(words[1]) if len(words) == 2 else -1.0
                except ValueError:
                    seconds = -1.0
                if not 0 <= seconds <= MAX_SLEEP_S:  # nan did not sleep; 1e300 stopped the emulator (OverflowError)
                    typer.echo(f"error: sleep takes 0 to {MAX_SLEEP_S} seconds, got {' '.join(words[1:])!r}")
                else:
                    threading.Event().wait(seconds)
                continue
            typer.echo(device.command(line.strip()))
            sys.stdout.flush()
    finally:
        if device is not None:
            device.stop()


@reader_app.command("list")
def list_readers(
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Open each port and try each protocol's start-up (writes a PN532 wake-up to the port; "
            "RDM6300 and line readers answer only while a card is held to them).",
        ),
    ] = False,
    port: Annotated[
        list[str] | None,
        typer.Option(metavar="PORT", help="Also this port, e.g. an emulator's pty or socket://HOST:PORT (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per port.")] = False,
) -> None:
    """List serial ports with their USB id and bridge chip; with --probe, say which reader answers."""
    found = list_ports() + [PortInfo(extra, "given with --port") for extra in port or []]
    if not found:
        typer.echo(
            "no serial ports found: is the USB-serial adapter plugged in? (Linux: /dev/ttyUSB* or /dev/ttyACM*, "
            "and your user in the dialout group; macOS: /dev/cu.usbserial-*; Windows: COM3 ...)"
        )
        return
    if probe:
        logging.getLogger("firmware.readers").setLevel(logging.ERROR)  # a port that is no reader is not a warning
    if not as_json:
        typer.echo(f"{'PORT':<24} {'USB ID':<10} {'BRIDGE':<24} DESCRIPTION")
    for info in found:
        answer = probe_port(info.device) if probe else None
        if as_json:
            record = {
                "port": info.device,
                "usb_id": info.usb_id,
                "bridge": info.bridge,
                "description": info.description,
            }
            typer.echo(json.dumps(record | ({"probe": answer} if probe else {})))
        else:
            typer.echo(f"{info.device:<24} {info.usb_id:<10} {info.bridge or '-':<24} {info.description}")
            if answer is not None:
                typer.echo(f"  {answer}")


def issue_cards_file(node: Node, path: Path) -> None:
    """Cards from a YAML file (`cards:` as in a scenario) into the machine's wallet, in one transaction."""

    class CardsFile(Strict):
        cards: dict[str, CardSpec]

    issue_cards(node, validate(CardsFile, read_yaml(path)).cards.values())


def serve(
    machine: Annotated[Path, typer.Option(help="Machine config YAML.")],
    reader: Annotated[str, typer.Option(help=READER_URL_HELP)],
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Machine state: balances, sales, journal (default: the user's state dir, "
            "~/.local/state/vending/MACHINE-ID on Linux, kept across runs with a development term key)."
        ),
    ] = None,
    cards: Annotated[
        Path | None,
        typer.Option(help="YAML with `cards:` as in a scenario, issued into a fresh state dir's wallet."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Events as JSON lines.")] = False,
    keypad: Annotated[str, typer.Option(help=KEYPAD_HELP + ".")] = "stdin",
    payment: Annotated[
        str | None,
        typer.Option(
            help="`card` (the purse on each card, through a PN532) or `machine_wallet`; default: the config's."
        ),
    ] = None,
    card_keys: Annotated[
        Path | None,
        typer.Option(
            help="With the purse on the card: the issuer's key dir (`vending keys dev-set`), whose card-master.key "
            "becomes the machine's secure access module in the state dir (0600)."
        ),
    ] = None,
    broker: Annotated[
        str, typer.Option(help="mqtt://host:port to report to (backends run separately), or none.")
    ] = "none",
    trust: Annotated[
        Path | None,
        typer.Option(
            help="Key dir with vendor.pub, school.pub, issuer.pub, issuer-seal.pub (or `trust:` in the config)."
        ),
    ] = None,
    identity: Annotated[
        Path | None, typer.Option(help="The machine's signing key (default: machine.key in the state dir).")
    ] = None,
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the machine does (INFO).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log errors only.")] = False,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning (the default), error; overrides -v and -q.")
    ] = None,
) -> None:
    """Run the machine on the real clock with a real or emulated card reader.

    Keypad and door come from stdin lines (`select A1`, `cancel`, `door open`, `door close`, `privacy`,
    `status`, `stock`, `help`, `quit`); the display and events go to stdout in the machine's local time.
    It stops cleanly (outbox drained, books closed, exit 0) after `quit`, at the end of stdin, or on
    SIGTERM; with `--keypad none` it reads no stdin and runs until SIGTERM, as under a service manager.
    Warnings (a reader offline, a refused command) are logged to stderr, never with a card number.
    It closes each trading day at local midnight, and on start-up any day a power cut left open.
    This is `python -m firmware` with a laptop's defaults: a state dir and development term key of its
    own, and cards issued from a file.
    """
    try:
        lines = keypad_lines(keypad, sys.stdin)
        setup = console_machine(machine, log_level, verbose, quiet)
        setup = with_payment_mode(setup, payment) if payment is not None else setup
        check_reader_for(setup.config.payment.mode, reader)  # before anything is written to the state dir
        clock = SystemClock()
        printer = EventPrinter(as_json, zone=setup.config.zone)
        where = state_dir or default_state_dir(setup.config.id)
        link = None
        if broker != "none":
            address = broker_address(broker, username, password, ca, cert, cert_key)
            link = machine_link(setup, address, trust, identity, where)
        if state_dir is None and not key_path(where).exists():  # a laptop's first run; a school's machine: `keys init`
            simulation_term_key(where, clock.now().astimezone(setup.config.zone).date(), "dev")
            printer(clock.now(), "state_dir", {"path": str(where), "new": True, "term_key": "development"})
        if cards is not None and setup.config.payment.mode == "card":
            raise VendingError(
                "--cards issues balances into the machine's wallet; with the purse on the card the "
                "money is on the cards themselves (`vending card issue`)"
            )
        if card_keys is not None:
            install_card_master(card_keys, where)
        node = Node(setup, where, console_hardware(setup, clock), link=link, events=printer)
    except VendingError as exc:
        fail(exc)
    if cards is not None:
        try:
            if not node.fresh:
                raise VendingError(
                    f"--cards: {where} already holds this machine's wallet; cards are issued only into a "
                    "fresh state dir (drop --cards to go on with the cards it has, or give a new --state-dir)"
                )
            issue_cards_file(node, cards)
        except VendingError as exc:
            node.close()
            fail(exc)
    try:
        run_machine(node, reader, lines, printer)
    except VendingError as exc:
        fail(exc)


def default_state_dir(machine_id: str) -> Path:
    """Where a machine without ``--state-dir`` keeps its books: the user's state dir, one per machine id."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("vending")) / machine_id
