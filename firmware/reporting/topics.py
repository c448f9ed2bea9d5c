"""MQTT topic names (documented in docs/asyncapi.yaml); one place so publisher and backends agree."""

from __future__ import annotations

VENDOR_PREFIX = "vending/v1"
ISSUER_PREFIX = "issuer/v1"
SCHOOL_PREFIX = "school/v1"  # a machine's reports sealed to its school (guardian alerts), and the school's acks
PREFIXES = {"vendor": VENDOR_PREFIX, "issuer": ISSUER_PREFIX, "school": SCHOOL_PREFIX}  # stream -> its topics
GUARDIAN_ALERT = "guardian-alert"
AUTH, AUTH_ANSWER = "auth", "auth-answer"  # an account machine's issuer requests and their answers (issuer/v1/<m>/...)
MAX_COMMAND_BYTES = 4096  # a command larger than this is refused unread (the publisher keeps one byte more)


def vendor(machine: str, kind: str) -> str:
    return f"{VENDOR_PREFIX}/{machine}/{kind}"


def issuer(machine: str, kind: str) -> str:
    return f"{ISSUER_PREFIX}/{machine}/{kind}"


def ack(stream: str, machine: str) -> str:
    return f"{PREFIXES[stream]}/{machine}/ack"


def batch(stream: str, machine: str) -> str:
    """Where several of a stream's reports travel as one signed message (firmware/reporting/batches.py)."""
    return f"{PREFIXES[stream]}/{machine}/batch"


def command(machine: str, name: str) -> str:
    return f"{VENDOR_PREFIX}/{machine}/cmd/{name}"


def split(topic: str) -> tuple[str, str, str] | None:
    """``(prefix, machine, kind)`` for ``vending/v1/M/kind``, ``issuer/v1/M/kind``, ``school/v1/M/kind``; else None."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" not in PREFIXES.values():
        return None
    return f"{parts[0]}/{parts[1]}", parts[2], parts[3]


def command_name(topic: str, machine: str) -> str | None:
    """The command a ``vending/v1/<machine>/cmd/<name>`` topic carries for ``machine``; None for any other topic."""
    head, _, name = topic.rpartition("/")
    parsed = split(head)
    if parsed is None or parsed != (VENDOR_PREFIX, machine, "cmd") or not name:
        return None
    return name


def ack_stream(topic: str, machine: str) -> str | None:
    """The stream (vendor, issuer, school) an ack topic acknowledges for ``machine``; None for any other topic."""
    parsed = split(topic)
    if parsed is None or parsed[1:] != (machine, "ack"):
        return None
    return next(stream for stream, prefix in PREFIXES.items() if prefix == parsed[0])
