"""``python -m firmware``: the machine on the real clock with its reader; keypad and door on stdin, screen on stdout.

This is what runs on the machine, with nothing of ``simulator/`` imported (import-linter checks it).
``vending serve`` is a thin layer over ``run`` that adds a development term key, issued cards and a
default state dir. The motor board is the one part not emulated: the ``virtual`` dispenser stands in.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from firmware.app.console import ConsoleDisplay, EventPrinter, log_times_in, setup_logging
from firmware.app.keypad import INPUT_HELP, KEYPAD_HELP, keypad_lines
from firmware.app.node import Link, Node
from firmware.app.runtime import Runtime
from firmware.clock import SystemClock
from firmware.config.machine import MachineSetup, load_machine
from firmware.controller.records import Hardware
from firmware.dispensers.virtual import VirtualDispenser
from firmware.errors import EMPTY_PATH, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, VendingError
from firmware.identity.keyset import MACHINE_KEY_FILE, MachineTrust, machine_identity
from firmware.ports import Clock
from firmware.readers.registry import READER_URL_HELP, check_reader_for, open_reader
from firmware.reporting.mqtt import PASSWORD_ENV, BrokerAddress

FLUSH_ON_EXIT_S = 5.0


def machine_link(
    setup: MachineSetup, address: BrokerAddress, trust: Path | None, identity: Path | None, state_dir: Path
) -> Link:
    """Broker, trust anchors and the machine's own key for a reporting machine; VendingError naming what is missing."""
    config = setup.config
    if trust is not None:
        anchors = MachineTrust.from_dir(trust)
    elif config.trust is not None:
        anchors = MachineTrust.load(*config.trust.paths(setup.path))
    else:
        raise VendingError(
            "a reporting machine needs its trust anchors: --trust DIR or `trust:` in the machine config "
            "(create a development set with `vending keys dev-set --dir DIR --machines ID`)"
        )
    return Link(address, anchors, machine_identity(identity or state_dir / MACHINE_KEY_FILE, config.id))


def console_machine(path: Path, log_level: str | None, verbose: bool, quiet: bool) -> MachineSetup:
    """The machine's config, with logging on stderr stamped in its zone as its event lines are (both consoles)."""
    setup_logging(log_level, verbose, quiet)
    setup = load_machine(path)
    log_times_in(setup.config.zone)
    return setup


def console_hardware(setup: MachineSetup, clock: Clock) -> Hardware:
    """The real clock, the console as the screen, the virtual dispenser stocked as the config says."""
    stock = {code: slot.stock for code, slot in setup.config.slots.items()}
    return Hardware(clock, ConsoleDisplay(), VirtualDispenser(stock))


def event_loop(node: Node, reader_url: str, answer: Callable[[str], None] | None = None) -> Runtime:
    """The node's loop reading ``reader_url`` (nothing opened until the first read); VendingError for a bad URL."""
    runtime = Runtime(node, answer=answer)
    runtime.reader = open_reader(reader_url, node.controller.hw.clock, on_status=runtime.reader_status)
    return runtime


@contextmanager
def stopped_by_sigterm(stopping: threading.Event) -> Iterator[None]:
    """SIGTERM (a service manager's stop, ``docker stop``, ``kill``) sets ``stopping``, as ``quit`` does.

    Its default action killed the process mid-loop: no drain of the outbox, no close of the books.
    Only the main thread may set a handler; elsewhere (a test's thread) SIGTERM keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda _number, _frame: stopping.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def run(node: Node, reader_url: str, lines: Iterable[str] | None, printer: EventPrinter) -> None:
    """Open the reader, start the node, handle events until ``quit``, the end of ``lines`` or SIGTERM; then close.

    Without ``lines`` (no keypad) only SIGTERM or Ctrl-C stops it; closing drains the outbox first.
    The node is closed whatever happens (a reader URL that cannot be opened is a VendingError).
    """
    clock = node.controller.hw.clock
    runtime: Runtime | None = None
    try:
        runtime = event_loop(node, reader_url, lambda text: printer(clock.now(), "answer", {"text": text}))
        with stopped_by_sigterm(runtime.stopping):  # from before the node announces itself started
            node.start()
            runtime.start_threads(lines)
            runtime.run()
    finally:
        if runtime is not None:
            runtime.stop()
        node.close(flush_s=FLUSH_ON_EXIT_S)


def path_argument(text: str) -> Path:
    """A path given on the command line; an empty one (``--state-dir "$UNSET"``) is refused, never read as '.'."""
    if not text:
        raise argparse.ArgumentTypeError(EMPTY_PATH)
    return Path(text)


def parser() -> argparse.ArgumentParser:
    path = path_argument
    cli = argparse.ArgumentParser(
        prog="python -m firmware",
        description="Run the vending machine on the real clock with its card reader. "
        f"Keypad and door come from stdin lines ({INPUT_HELP}); the screen and events go to stdout.",
    )
    cli.add_argument("--machine", type=path, required=True, help="machine config YAML")
    cli.add_argument("--reader", required=True, help=READER_URL_HELP)
    cli.add_argument("--state-dir", type=path, required=True, help="the machine's books and its term key (keys init)")
    cli.add_argument("--broker", default="none", help="mqtt://host:port or mqtts://host:port to report to, or none")
    cli.add_argument("--trust", type=path, help="key dir with vendor.pub, school.pub, issuer.pub, issuer-seal.pub")
    cli.add_argument("--identity", type=path, help="the machine's signing key (default: machine.key in the state dir)")
    cli.add_argument("--username", help="MQTT user name")
    cli.add_argument("--password", default=os.environ.get(PASSWORD_ENV), help=f"MQTT password (prefer ${PASSWORD_ENV})")
    cli.add_argument("--ca", type=path, help="CA certificate to check an mqtts:// broker against")
    cli.add_argument("--cert", type=path, help="client certificate (mqtts://)")
    cli.add_argument("--cert-key", type=path, help="the client certificate's private key")
    cli.add_argument("--json", dest="as_json", action="store_true", help="events as JSON lines")
    cli.add_argument("--keypad", default="stdin", help=KEYPAD_HELP)
    cli.add_argument("-v", "--verbose", action="store_true", help="log what the machine does (INFO)")
    cli.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    cli.add_argument("--log-level", help="debug, info, warning (the default), error; overrides -v and -q")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 after ``quit`` or SIGTERM, 2 with the reason on stderr for bad input or environment, 130 on Ctrl-C."""
    args = parser().parse_args(argv)
    try:
        lines = keypad_lines(args.keypad, sys.stdin)
        setup = console_machine(args.machine, args.log_level, args.verbose, args.quiet)
        check_reader_for(setup.config.payment.mode, args.reader)
        link = None
        if args.broker != "none":
            address = BrokerAddress.parse(
                args.broker,
                args.username,
                args.password,
                *(str(path) if path else None for path in (args.ca, args.cert, args.cert_key)),
            )
            link = machine_link(setup, address, args.trust, args.identity, args.state_dir)
        clock = SystemClock()
        printer = EventPrinter(args.as_json, zone=setup.config.zone)
        node = Node(setup, args.state_dir, console_hardware(setup, clock), link=link, events=printer)
        run(node, args.reader, lines, printer)
    except VendingError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK
