"""Hostile MQTT payloads: what any client on the broker can publish at any topic a party subscribes to.

Each is (name, bytes). Together they cover: not JSON, not an object, deep nesting, numbers beyond
64 bits and below zero, wrong types, missing fields, NaN and infinities, invalid UTF-8 and lone
surrogates, control bytes, a byte-order mark, duplicate keys, a huge payload, and well-formed
messages with forged or impossible values (an ack for a seq never sent, a sealed settlement that is
random bytes, a report naming another machine).
"""

from __future__ import annotations

import base64
import os

DEEP = 2000  # RecursionError depth for json.loads on CPython is about 1,000
HUGE = 1_000_000  # over the broker; the 20 MB case runs against the parser only (tests/firmware/reporting)

HOSTILE: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("null", b"null"),
    ("array", b"[]"),
    ("number", b"42"),
    ("string", b'"seq"'),
    ("true", b"true"),
    ("not-json", b"{not json"),
    ("truncated", b'{"seq": 1'),
    ("open-brackets", b"[" * DEEP),
    ("open-objects", b'{"a":' * DEEP),
    ("deep-valid", b'{"a":' * 60 + b"1" + b"}" * 60),
    ("deep-in-field", b'{"id": "x", "slots": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("invalid-utf8", b"\xff\xfe\xfd"),
    ("invalid-utf8-in-string", b'{"id": "\xc3\x28"}'),
    ("lone-surrogate", b'{"id": "\\ud800"}'),
    ("nul-bytes", b"\x00" * 64),
    ("bom", b"\xef\xbb\xbf{}"),
    ("control-chars", b'{"id": "\x01\x02"}'),
    ("seq-2^63", b'{"seq": 9223372036854775808}'),
    ("seq-2^64", b'{"seq": 18446744073709551616}'),
    ("seq-huge", b'{"seq": ' + b"9" * 400 + b"}"),
    ("seq-negative", b'{"seq": -1}'),
    ("seq-zero", b'{"seq": 0}'),
    ("seq-float", b'{"seq": 1.5}'),
    ("seq-exponent", b'{"seq": 1e400}'),
    ("seq-nan", b'{"seq": NaN}'),
    ("seq-infinity", b'{"seq": Infinity}'),
    ("seq-string", b'{"seq": "1"}'),
    ("seq-bool", b'{"seq": true}'),
    ("seq-null", b'{"seq": null}'),
    ("seq-list", b'{"seq": [1]}'),
    ("seq-object", b'{"seq": {"seq": 1}}'),
    ("seq-missing", b'{"sequence": 1}'),
    ("seq-duplicate-key", b'{"seq": 1, "seq": 999999}'),
    ("forged-ack-far-ahead", b'{"seq": 1000000}'),
    ("command-id-number", b'{"id": 1, "slots": {"A1": 1}}'),
    ("command-id-huge", b'{"id": "' + b"x" * 5000 + b'"}'),
    ("command-count-2^63", b'{"id": "h1", "slots": {"A1": 9223372036854775808}}'),
    ("command-count-negative", b'{"id": "h2", "slots": {"A1": -1}}'),
    ("command-price-float", b'{"id": "h3", "slot": "A1", "price": 1e308}'),
    ("command-lockouts-many", b'{"id": "h4", "lockouts": [' + b",".join([b"{}"] * 5000) + b"]}"),
    ("command-wrong-shape", b'{"id": "h5", "slots": ["A1", 1]}'),
    ("report-other-machine", b'{"machine": "OTHER", "seq": 1, "txn": "t", "outcome": "vended"}'),
    ("report-missing-fields", b'{"seq": 3, "outcome": "vended"}'),
    ("settlement-random", b'{"seq": 1, "day": "2026-03-02", "sealed": "' + base64.b64encode(os.urandom(96)) + b'"}'),
    ("settlement-not-base64", b'{"seq": 1, "sealed": "!!!not base64!!!"}'),
    ("settlement-wrong-type", b'{"seq": 1, "sealed": 5}'),
    ("huge", b'{"pad": "' + b"x" * HUGE + b'"}'),
]
