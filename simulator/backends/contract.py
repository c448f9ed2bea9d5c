"""The backends check every report against docs/asyncapi.yaml before storing it.

A message with the right seq but the wrong shape (``{"seq": 1000000}`` on a sale topic, a report
naming another machine than its topic) is refused, never stored and never acked. What the schema
cannot tell -- a well-shaped report forged by another client on the broker -- the machine's signature
does (checked before this, in ``BackendService.verify``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import fastjsonschema
import jsonschema

from firmware.reporting.codec import CheckedPayload, decoder, schemas


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """The named payload schema, with the spec's components beside it so its $refs resolve."""
    return jsonschema.Draft202012Validator({**schemas()[name], "components": {"schemas": schemas()}})


@functools.cache
def compiled(name: str) -> Callable[[Any], Any]:
    """The named schema compiled to Python (fastjsonschema): the fast yes for the common, valid report.

    The schemas use no keyword whose meaning differs between draft 7 and 2020-12 (a test keeps it so),
    and the compiled check also holds ``format: date-time``, which jsonschema only annotates: where
    it says no, ``check`` asks jsonschema, whose answer and message are the contract's.
    """
    return fastjsonschema.compile({**schemas()[name], "components": {"schemas": schemas()}})


def check(kind: str, machine: str, payload: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first field that breaks the contract for ``kind``.

    A payload the kind's typed decoder already accepted (``CheckedPayload``) is not walked again.
    """
    if isinstance(payload, CheckedPayload) and payload.kind == kind:
        error = None
    else:
        error = _schema_error(kind, payload)
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "payload"
        raise ValueError(f"{kind} does not match the contract at {where}: {error.message[:120]}")
    if payload.get("machine", machine) != machine:
        raise ValueError(f"{kind} names machine {payload.get('machine')!r} on {machine!r}'s topic")


def _schema_error(kind: str, payload: dict[str, Any]) -> Any:
    """The contract's error for ``payload`` (jsonschema's best match), or None when it holds."""
    try:
        compiled(kind)(payload)
        return None
    except fastjsonschema.JsonSchemaException:
        return jsonschema.exceptions.best_match(validator(kind).iter_errors(payload))


def prepare(kinds: Iterable[str]) -> None:
    """Compile the schemas and typed decoders of these kinds now, at start-up, not inside the first batch's handling.

    The envelopes (a JWS, a batch, its manifest) are only decoded typed: their slow path is
    ``parse_object`` and the shape checks beside it, never ``check``, so they need no compiled schema.
    """
    for kind in ("signed", "batch", "batch-manifest"):
        decoder(kind)
    for kind in kinds:
        if kind in schemas():
            compiled(kind)
            decoder(kind)
