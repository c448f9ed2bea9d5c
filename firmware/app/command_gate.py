"""Who may tell this machine what to do, and when: the checks a remote command passes before it is applied.

Authority follows the three parties: the vendor runs stock, prices and slots; the school runs lunch
lockouts (and any food-rule change); the issuer only acknowledges money and commands nothing. A command
counts only if the right party signed it (identity/signing.py), it names this machine, it is fresh
(issued no later than a few minutes ahead of our clock, not expired, not longer-lived than the config
allows), its counter is above the last one this signer used (stored durably, so neither a replay nor a
reordering works, even across a restart), and the signer is within its rate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import AwareDatetime, Field, field_validator

from firmware.clock import CLOCK_SKEW
from firmware.config.source import Strict
from firmware.domain import MACHINE_ID
from firmware.identity.signing import Identity, PublicKey, TrustStore
from firmware.reporting.signed import canonical, open_signed, sign_text
from firmware.reporting.topics import MAX_COMMAND_BYTES
from firmware.reporting.wire import MAX_SEQ, WireError

COUNTER_SETTING = "command_counter:"
ID_CHARS = "A-Za-z0-9._:-"
COMMAND_ID = re.compile(rf"^[{ID_CHARS}]{{1,64}}$")
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def counter_ceiling(issued_at: datetime) -> int:
    """The highest counter a command issued at ``issued_at`` may carry: its issue time in microseconds + the skew.

    Counters are issue-time microseconds (``vending cmd send``'s default; smaller ones are fine), so a
    signer's counter never runs more than ``CLOCK_SKEW`` ahead of real time, and one stolen or mistaken
    command cannot burn the counter space: the signer's next command a few minutes later is in order again.
    """
    return int((issued_at + CLOCK_SKEW).timestamp() * 1_000_000)


class Refused(Exception):
    """A command that must change nothing; the message is the reason sent back."""


class SignedCommand(Strict):
    """The fields every command carries under its signature, besides its own."""

    id: str = Field(min_length=1, max_length=64, pattern=rf"^[{ID_CHARS}]+$")
    machine: str = Field(pattern=MACHINE_ID.pattern)
    command: str = Field(min_length=1, max_length=32)
    issued_at: AwareDatetime = Field(strict=False)  # RFC 3339 text on the wire, with its UTC offset
    expires_at: AwareDatetime = Field(strict=False)
    counter: int = Field(ge=1, le=MAX_SEQ)

    @field_validator("issued_at", "expires_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        """RFC 3339 exactly, as docs/asyncapi.yaml states it (pydantic alone also takes other ISO 8601 forms)."""
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise ValueError("expected an RFC 3339 date-time with its offset, e.g. 2026-03-02T10:00:00+08:00")
        return value.upper()


@dataclass(frozen=True)
class Opened:
    """A command whose signature checked out: the signer and the signed body (not yet validated)."""

    signer: PublicKey
    body: dict[str, object]


@dataclass
class RateLimit:
    """A token bucket per signer: ``per_minute`` on average, bursts of up to ``burst``."""

    per_minute: int
    burst: int = 5
    monotonic: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # kid -> (tokens, when)

    def take(self, who: str) -> bool:
        now = self.monotonic()
        tokens, then = self._buckets.get(who, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[who] = (tokens, now)
            return False
        self._buckets[who] = (tokens - 1.0, now)
        return True


class CommandGate:
    """Opens and checks commands for one machine; the processor applies what passes."""

    def __init__(
        self,
        machine: str,
        authorities: TrustStore,
        authority: Mapping[str, str],
        *,
        max_lifetime: timedelta,
        rate: RateLimit,
    ) -> None:
        self.machine = machine
        self.authorities = authorities
        self.authority = authority  # command -> the one party that may give it (command_set.py)
        self.max_lifetime = max_lifetime
        self.rate = rate

    def open(self, name: str, raw: bytes) -> Opened:
        """The signature, by one of the parties this machine trusts (which one is ``authorise``'s business)."""
        if name not in self.authority:
            raise Refused(f"unknown command {name!r}; known: {', '.join(self.authority)}")
        try:
            signed, body = open_signed(raw, MAX_COMMAND_BYTES, self.authorities.verify)
        except WireError as exc:
            raise Refused(f"not accepted: {exc}") from None
        return Opened(signed.signer, body)

    def authorise(self, name: str, opened: Opened) -> None:
        """Only the party with authority over ``name`` may give it (a vendor-signed set_lockout is refused)."""
        party, signer = self.authority[name], opened.signer
        if signer.party != party:
            raise Refused(f"signed by the {signer.party}, who has no say here: {name} is the {party}'s to give")
        if opened.body.get("command") != name:  # a signed restock re-sent on the set_price topic
            raise Refused(f"the signed command is {opened.body.get('command')!r}, sent as {name!r}")

    def check(self, name: str, command: SignedCommand, signer: PublicKey, now: datetime, last_counter: int) -> None:
        """Everything but the signature: addressee, freshness, order, rate."""
        if command.machine != self.machine:
            raise Refused(f"the command is for machine {command.machine}, not this one")
        if command.issued_at > now + CLOCK_SKEW:
            raise Refused(f"issued at {command.issued_at.isoformat()}, in the future")
        if command.expires_at - command.issued_at > self.max_lifetime:
            raise Refused(f"a command may live at most {int(self.max_lifetime.total_seconds())} s")
        if now > command.expires_at:
            raise Refused(f"expired at {command.expires_at.isoformat()}")
        ceiling = counter_ceiling(command.issued_at)
        if command.counter > ceiling:  # a counter far ahead would lock the signer out for good once used
            raise Refused(
                f"counter {command.counter} runs ahead of its issue time: at most {ceiling} "
                "(issue-time microseconds plus a few minutes)"
            )
        if command.counter <= last_counter:
            raise Refused(f"replayed or out of order: counter {command.counter}, last used {last_counter}")
        if not self.rate.take(signer.kid):
            raise Refused(f"rate limited: at most {self.rate.per_minute} commands a minute from the {signer.party}")

    @staticmethod
    def counter_setting(signer: PublicKey) -> str:
        return COUNTER_SETTING + signer.kid

    @staticmethod
    def answer_key(signer: PublicKey, command_id: str) -> str:
        """Where an answer is remembered: per signer, so nobody can claim another party's command ids."""
        return f"{signer.kid}/{command_id}"


def compose_command(identity: Identity, body: dict[str, object]) -> str:
    """A signed command as the operator's tool sends it (``vending cmd send``): ``body`` from ``command_body``."""
    return sign_text(identity, canonical(body))


def command_body(
    machine: str,
    name: str,
    fields: dict[str, object],
    issued_at: datetime,
    lifetime: timedelta,
    counter: int,
    command_id: str,
) -> dict[str, object]:
    """What a command's signature covers: its own fields and the envelope every command carries."""
    return {
        **fields,
        "id": command_id,
        "machine": machine,
        "command": name,
        "issued_at": issued_at.isoformat(),
        "expires_at": (issued_at + lifetime).isoformat(),
        "counter": counter,
    }
