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

from firmware.app.command_gate import compose_command
from firmware.identity.signing import Identity
from firmware.reporting import topics


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

    The one place the dashboard and ``vending cmd send`` make their commands.
    """
    command_id = f"cmd-{secrets.token_hex(6)}"
    payload = compose_command(
        identity,
        machine,
        name,
        fields,
        issued_at=issued_at,
        lifetime=lifetime,
        counter=counter if counter is not None else issue_counter(issued_at),
        command_id=command_id,
    )
    return command_id, payload


_last_counter = 0


def issue_counter(issued_at: datetime) -> int:
    """The command's issue time in microseconds, and above this process's last one.

    The machine refuses a counter far ahead of its issue time; two commands issued within the same
    microsecond (or at one instant of a virtual clock) are both still in order.
    """
    global _last_counter
    _last_counter = max(int(issued_at.timestamp() * 1_000_000), _last_counter + 1)
    return _last_counter


@dataclass
class Operator:
    """Signs commands as the vendor and hands them to ``publish(topic, payload)`` (QoS 1)."""

    identity: Identity
    publish: Callable[[str, str], None]
    clock: Callable[[], datetime] = wall_clock
    lifetime: timedelta = timedelta(minutes=5)

    def send(self, machine: str, name: str, fields: dict[str, Any]) -> str:
        """Publish one signed command; returns its id."""
        command_id, payload = operator_command(
            self.identity, machine, name, fields, issued_at=self.clock(), lifetime=self.lifetime
        )
        self.publish(topics.command(machine, name), payload)
        return command_id
