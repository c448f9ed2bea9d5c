"""``vending cmd send``: the operator's tool for remote commands, signed, so nobody hand-writes JSON.

The command is signed with the given key (the vendor's for stock, prices and slots; the school's for
lockouts), names the machine, carries its issue time, expiry and a counter, and is published with
QoS 1. The tool then waits for the machine's ``cmd-result`` and exits 0 if it was applied, 1 if the
machine refused it (the reason is printed), 3 if no answer came.
"""

from __future__ import annotations

import json
import queue
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from firmware.app.command_gate import Refused
from firmware.app.command_set import AUTHORITY, COMMANDS, fields_from_words
from firmware.config.machine import MAX_COMMAND_LIFETIME
from firmware.domain import MACHINE_ID, MACHINE_ID_RULE
from firmware.errors import VendingError
from firmware.files import read_capped
from firmware.reporting import topics
from firmware.reporting.mqtt import make_client, reachable
from firmware.reporting.wire import WireError, parse_object
from simulator.cli.connection import CaFile, CertFile, CertKey, Password, Username, broker_address
from simulator.cli.exits import EXIT_FAILED, EXIT_NO_ANSWER, EXIT_OK, fail, seconds_option
from simulator.cli.reporting import party_identity
from simulator.dashboard.operator import operator_command

cmd_app = typer.Typer(no_args_is_help=True, help="Send signed remote commands to a machine.")


@cmd_app.command("send", context_settings={"allow_extra_args": False})
def send(
    command: Annotated[str, typer.Argument(help=f"One of: {', '.join(COMMANDS)}.")],
    args: Annotated[list[str] | None, typer.Argument(help="The command's arguments (see the usage above).")] = None,
    key: Annotated[
        Path, typer.Option(help="Your signing key: vendor.key (stock, prices, slots) or school.key (lockouts).")
    ] = Path("keys/vendor.key"),
    machine: Annotated[str, typer.Option(help="The machine id.")] = "",
    broker: Annotated[str, typer.Option(help="mqtt://host:port or mqtts://host:port")] = "mqtt://127.0.0.1:1883",
    lifetime: Annotated[
        int, typer.Option(min=1, max=MAX_COMMAND_LIFETIME, help="Seconds until the command expires (config caps it).")
    ] = 300,
    counter: Annotated[
        int | None, typer.Option(help="Counter above the last one used with this key (default: now in microseconds).")
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the machine's answer (0: don't wait).")] = 15.0,
    amount: Annotated[int | None, typer.Option(help="refund: how much of the sale's price (TWD).")] = None,
    approval: Annotated[
        Path | None, typer.Option(help="refund: the school's signed approval (`vending school approve-refund`).")
    ] = None,
    username: Username = None,
    password: Password = None,
    ca: CaFile = None,
    cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:
    """Sign and send one command, then print the machine's answer.

    Examples: `restock A1=10 B2=8`, `set_price A1 25`, `disable_slot C3`, `set_lockout lunch.yaml`,
    `refund TXN --amount 25`.
    """
    if command not in COMMANDS:
        fail(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    if (amount is not None or approval is not None) and command != "refund":
        fail(f"--amount and --approval belong to refund, not {command}")
    if not MACHINE_ID.fullmatch(machine):
        fail(f"--machine {machine!r}: the machine to command, {MACHINE_ID_RULE}")
    seconds_option(wait)
    address = broker_address(broker, username, password, ca, cert, cert_key)  # every argument before any file
    words = [*(args or []), *([] if amount is None else ["--amount", str(amount)])]
    try:
        fields = fields_from_words(command, words)
        if approval is not None:
            fields["approval"] = _approval(approval)
    except ValueError as exc:
        fail(exc)
    identity = party_identity(AUTHORITY[command], key)  # restock with keys/school.key: named, not sent
    try:  # checked as the machine will check it: what it would refuse is never signed or sent
        command_id, payload = operator_command(
            identity, machine, command, fields, issued_at=datetime.now(UTC), lifetime=timedelta(seconds=lifetime),
            counter=counter,
        )  # fmt: skip
    except Refused as exc:
        fail(f"{command} {' '.join(words)}: {exc}; nothing sent")
    try:
        reachable(address)
    except VendingError as exc:
        fail(exc)
    answer, heard = _publish_and_wait(address, machine, command, payload, command_id, wait)
    if answer is None:
        if not wait:
            typer.echo("sent")
            raise typer.Exit(EXIT_OK)
        typer.echo(
            f"sent {command} {command_id} to {machine}; no answer within {wait:g} s; {_last_heard(machine, heard)}"
        )
        raise typer.Exit(EXIT_NO_ANSWER)
    typer.echo(json.dumps(answer, ensure_ascii=False))
    raise typer.Exit(EXIT_OK if answer.get("ok") else EXIT_FAILED)


def _approval(path: Path) -> dict[str, Any]:
    """The school's signed approval of a refund, as `vending school approve-refund` wrote it."""
    try:
        return parse_object(read_capped(path, 4096), 4096)
    except OSError as exc:
        raise ValueError(f"--approval {path}: {exc.strerror or exc}") from None
    except WireError as exc:
        raise ValueError(f"--approval {path}: {exc}") from None


def _last_heard(machine: str, heard: str | None) -> str:
    """What the broker's retained status says of ``machine``: a mistyped id is never heard at all."""
    if heard is None:
        return f"no machine {machine} has been heard on this broker (no status retained): is the id right?"
    if heard == "offline":
        return (
            f"machine {machine} is offline (its last status); the command waits for it if it is retained by a session"
        )
    return f"machine {machine} said it was {heard}"


def _publish_and_wait(
    address: Any, machine: str, command: str, payload: str, command_id: str, wait: float
) -> tuple[dict[str, Any] | None, str | None]:
    """The machine's answer (None without one in time) and its last status on the broker (None if never heard)."""
    answers: queue.Queue[dict[str, Any]] = queue.Queue()
    subscribed = queue.Queue[bool]()
    heard: list[str] = []
    status_topic = topics.vendor(machine, "status")

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        try:  # signed by the machine; here it is only shown, never acted on
            envelope = parse_object(bytes(message.payload), 64 * 1024)
            body = parse_object(str(envelope.get("payload", "")).encode(), 64 * 1024)
        except WireError:
            return
        if message.topic == status_topic:
            heard.append(str(body.get("state")))
        elif body.get("id") == command_id:
            answers.put(body)

    client = make_client(address, f"operator-{secrets.token_hex(4)}", persistent=False)
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.put(True)
    client.connect(*address.endpoint, keepalive=15)
    client.loop_start()
    try:
        if wait:
            client.subscribe([(topics.vendor(machine, "cmd-result"), 1), (status_topic, 1)])
            subscribed.get(timeout=10)
        client.publish(topics.command(machine, command), payload, qos=1).wait_for_publish(timeout=10)
        try:
            answer = answers.get(timeout=wait) if wait else None
        except queue.Empty:
            answer = None
        return answer, heard[-1] if heard else None
    finally:
        client.disconnect()
        client.loop_stop()
