"""The dashboard's buttons: restock and price changes, signed with the vendor's key and published.

The machine trusts nothing the backend says about stock or prices unless the vendor signed it, so
the dashboard is only a convenient ``vending cmd send``: the same signed envelope, a fresh id and a
counter that only grows. The machine's answer (``cmd-result``) comes back through the backend's own
subscription and shows in "Last commands".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from firmware.app.command_gate import Refused, command_body, compose_command
from firmware.app.command_set import validated
from firmware.domain import txn_of
from firmware.identity.signing import Identity
from firmware.reporting import topics


class NotSent(Exception):
    """A command that could not go out now (the backend has no broker link): nothing was signed into the queue.

    paho would keep a QoS 1 message while disconnected and send it whenever the link came back, so
    the operator would read "sent" for a price change that may arrive much later, or expire on the
    way. A button that cannot send says so, and the operator presses it again when the link is back.
    """


def wall_clock() -> datetime:
    return datetime.now(UTC)


def operator_command(
    identity: Identity,
    machine: str,
    name: str,
    fields: dict[str, Any],
    *,
    issued_at: datetime,
    lifetime: timedelta,
    counter: int | None = None,
) -> tuple[str, str]:
    """(id, signed payload) of one command, signed by any party's key: a fresh id, a clock counter unless given.

    The one place the dashboard and ``vending cmd send`` make their commands. A body the machine would
    refuse (a negative count, a price of 0, a txn that names no sale, no machine) is ``Refused`` here,
    naming the field, before anything is signed or a counter used.
    """
    command_id = f"cmd-{secrets.token_hex(6)}"
    stamp = counter if counter is not None else max(int(issued_at.timestamp() * 1_000_000), 1)
    body = command_body(machine, name, fields, issued_at, lifetime, stamp, command_id)
    validated(name, body)
    if name == "refund" and not txn_of(machine, txn := str(body["txn"])):
        raise Refused(f"txn {txn}: a transaction of {machine} reads {machine}-<16 hex digits>, not another machine's")
    if counter is None:  # the counter this key gives this machine is taken only for a command that goes
        body["counter"] = issue_counter(identity.kid, machine, issued_at)
    return command_id, compose_command(identity, body)


_last_counters: dict[tuple[str, str], int] = {}  # (signing key, machine) -> the last counter issued here


def issue_counter(signer: str, machine: str, issued_at: datetime) -> int:
    """The command's issue time in microseconds, and above the last one this key gave this machine here.

    The machine refuses a counter far ahead of its issue time; two commands issued within the same
    microsecond (or at one instant of a virtual clock) are both still in order. Kept per key and
    machine: a command to one machine at a later time (or from another key) never pushes the next
    command to another machine ahead of its own issue time.
    """
    key = (signer, machine)
    last = _last_counters[key] = max(int(issued_at.timestamp() * 1_000_000), _last_counters.get(key, 0) + 1)
    return last


@dataclass
class Operator:
    """Signs commands as the vendor and hands them to ``publish(topic, payload)`` (QoS 1)."""

    identity: Identity
    publish: Callable[[str, str], None]
    clock: Callable[[], datetime] = wall_clock
    lifetime: timedelta = timedelta(minutes=5)

    def send(self, machine: str, name: str, fields: dict[str, Any]) -> str:
        """Publish one signed command; returns its id, or raises ``NotSent`` (then nothing went out)."""
        command_id, payload = operator_command(
            self.identity, machine, name, fields, issued_at=self.clock(), lifetime=self.lifetime
        )
        self.publish(topics.command(machine, name), payload)
        return command_id
