"""``vending reader emulate`` and ``vending serve``."""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from firmware.assembly import build_machine
from firmware.clock import SystemClock
from firmware.config.machine import load_machine
from firmware.controller.session import Hardware
from firmware.errors import InputError, VendingError
from firmware.readers.registry import open_reader
from simulator.emulators.devices import DEVICES
from simulator.hardware.virtual import RecordingDisplay, VirtualDispenser
from simulator.output import EventPrinter

reader_app = typer.Typer(no_args_is_help=True, help="Card-reader device emulators on pseudo-terminals.")


@reader_app.command("emulate")
def emulate(
    protocol: Annotated[str, typer.Option(help="pn532 | rdm6300 | line")],
    link: Annotated[Optional[Path], typer.Option(help="A stable symlink to the pty (kept across replug).")] = None,
    script: Annotated[Optional[Path], typer.Option(help="Read control lines from this file instead of stdin.")] = None,
) -> None:
    """Open a pseudo-terminal that behaves as the reader; control lines on stdin (or --script):
    `place UID`, `remove`, `tap UID` (place until read once), `fault noise|split|corrupt|silent|clear`,
    `unplug`, `replug`, `sleep SECONDS`, `quit`."""
    if protocol not in DEVICES:
        typer.echo(f"--protocol: unknown {protocol!r}; known: {', '.join(DEVICES)}", err=True)
        raise typer.Exit(2)
    device = DEVICES[protocol](link).start()
    typer.echo(f"{protocol} reader on {device.path}" + (f" (link {link})" if link else ""), err=False)
    sys.stdout.flush()
    lines = script.read_text().splitlines() if script else sys.stdin
    try:
        for line in lines:
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "quit":
                break
            if words[0] == "sleep" and len(words) == 2:
                threading.Event().wait(float(words[1]))
                continue
            typer.echo(device.command(line.strip()))
            sys.stdout.flush()
    finally:
        device.stop()


def issue_cards(built: object, path: Path) -> None:
    """Cards from a YAML file (`cards:` as in a scenario) into the machine's wallet, in one transaction."""
    from firmware.config.source import read_yaml, validate
    from firmware.ports import Guardian
    from simulator.scenarios.schema import CardSpec, Strict

    class CardsFile(Strict):
        cards: dict[str, CardSpec]

    parsed = validate(CardsFile, read_yaml(path))
    with built.db.atomic("journal"):  # type: ignore[attr-defined]
        for card in parsed.cards.values():
            g = card.guardian
            guardian = Guardian(g.linked, g.daily_limit, tuple(g.blocked_categories), tuple(g.blocked_kinds)) if g else None
            built.books.wallet.issue(card.uid, card.profile, card.balance, guardian)  # type: ignore[attr-defined]


def serve(
    machine: Annotated[Path, typer.Option(help="Machine config YAML.")],
    reader: Annotated[str, typer.Option(help="pn532:/dev/ttyUSB0, rdm6300:/dev/ttyS1?baud=9600, line:/tmp/reader0, "
                                             "virtual:")],
    state_dir: Annotated[Optional[Path], typer.Option(help="Machine state (default: a temp dir).")] = None,
    cards: Annotated[Optional[Path], typer.Option(help="YAML with `cards:` as in a scenario, issued into a fresh "
                                                       "state dir's wallet.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Events as JSON lines.")] = False,
    broker: Annotated[str, typer.Option(help="mqtt://host:port to report to (backends run separately), "
                                             "or none.")] = "none",
    issuer_key: Annotated[Optional[Path], typer.Option(help="The issuer's public key (issuer.pub) to seal "
                                                            "settlements to.")] = None,
) -> None:
    """Run the machine on the real clock with a real or emulated card reader. Keypad and door come
    from stdin lines (`select A1`, `cancel`, `door open`, `door close`, `quit`); the display and
    events go to stdout. Reader activity is logged to stderr, never with a card number."""
    from simulator.serve import ServeLoop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        setup = load_machine(machine)
    except InputError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    clock = SystemClock()
    with tempfile.TemporaryDirectory(prefix="vending-serve-") as tmp:
        hardware = Hardware(clock, RecordingDisplay(), VirtualDispenser(
            {code: slot.stock for code, slot in setup.config.slots.items()}))
        reporter = None
        if broker != "none":
            from firmware.reporting.reporter import reporter_for
            public = bytes.fromhex(issuer_key.read_text().strip()) if issuer_key else None

            def reporter(setup, books):  # type: ignore[no-untyped-def]
                return reporter_for(setup, books, public)
        built = build_machine(setup, state_dir or Path(tmp), hardware, events=EventPrinter(as_json),
                              reporter=reporter)
        if cards is not None and built.fresh:
            try:
                issue_cards(built, cards)
            except InputError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from None
        loop_holder: list[ServeLoop] = []
        try:
            card_reader = open_reader(reader, clock, on_status=lambda on, detail: loop_holder[0].reader_status(on, detail))
        except VendingError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        loop = ServeLoop(built.controller, card_reader)
        loop_holder.append(loop)
        built.controller.start()
        publisher = None
        if broker != "none":
            from firmware.reporting.commands import CommandProcessor
            from firmware.reporting.mqtt import BrokerAddress
            from firmware.reporting.publisher import OutboxPublisher

            publisher = OutboxPublisher(built.db.path, setup.config.id, BrokerAddress.parse(broker), clock).start()
            commands = CommandProcessor(built.controller)

            def after_event() -> None:
                while not publisher.commands.empty():
                    command = publisher.commands.get_nowait()
                    commands.handle(command.name, command.payload)
                publisher.wake()

            loop.after_event = after_event
        threading.Thread(target=loop.read_forever, name="reader", daemon=True).start()
        threading.Thread(target=loop.feed_lines, args=(sys.stdin,), name="stdin", daemon=True).start()
        try:
            loop.run()
        finally:
            loop.stopping.set()
            card_reader.close()
            if publisher is not None:
                publisher.flush(5)
                publisher.stop()
            built.db.close()
