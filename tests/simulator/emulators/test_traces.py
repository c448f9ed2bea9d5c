"""Sessions captured from libnfc's nfc-list and nfcpy's pn532 driver (traces/capture.py), replayed.

Two things must hold for every byte those host stacks sent and got: the project's framer reads
them as the frames they are (in any chunking, nothing corrupt), and today's chip model still gives
the answers those stacks accepted when the trace was taken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.readers import pn532_frames as f
from firmware.readers.base import take_frame
from simulator.emulators.pn532_chip import Pending, Pn532Chip

TRACES = sorted((Path(__file__).parent / "traces").glob("*.json"))


def load(path: Path) -> tuple[str, list[tuple[str, bytes]]]:
    data = json.loads(path.read_text())
    return data["uid"], [(event["from"], bytes.fromhex(event["hex"])) for event in data["events"]]


def frames(stream: bytes, chunks: list[int] | None = None) -> list[f.Frame]:
    """Decode a byte stream fed in the given chunk sizes, as a driver reading a serial port would."""
    found: list[f.Frame] = []
    buffer, position = b"", 0
    for size in [*(chunks or []), len(stream)]:
        buffer += stream[position : position + size]
        position += size
        buffer, frame = take_frame(f.decode, buffer)
        while frame is not None:
            found.append(frame)  # type: ignore[arg-type]
            buffer, frame = take_frame(f.decode, buffer)
        if position >= len(stream):
            break
    return found


def exchanges(events: list[tuple[str, bytes]]) -> list[tuple[int, bytes, bytes | None, bool]]:
    """(command, params, the response data or None for the error frame, aborted by the host's ACK)."""
    result: list[tuple[int, bytes, bytes | None, bool]] = []
    host, device = b"", b""
    for who, data in events:
        if who == "host":
            host += data
        else:
            device += data
    replies = [frame for frame in frames(device) if not isinstance(frame, f.Ack)]
    commands = [frame for frame in frames(host)]
    answers = iter(replies)
    for index, frame in enumerate(commands):
        if not isinstance(frame, f.Info):
            continue
        following = commands[index + 1] if index + 1 < len(commands) else None
        aborted = isinstance(following, f.Ack) and frame.command in (0x4A, 0x60)
        reply = None if aborted else next(answers)
        answer = reply.params if isinstance(reply, f.Info) else None
        result.append((frame.command, frame.params, answer, aborted))
    return result


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_every_byte_of_a_host_session_decodes_as_frames(path):
    _, events = load(path)
    for side, tfi in (("host", f.HOST), ("device", f.CHIP)):
        decoded = frames(b"".join(data for who, data in events if who == side))
        assert decoded and not [frame for frame in decoded if isinstance(frame, f.Corrupt)]
        assert all(frame.tfi == tfi for frame in decoded if isinstance(frame, f.Info))
        for frame in decoded:  # what the framer read, it writes back the same (preamble and all)
            assert f.decode(f.encode(frame)) == (len(f.encode(frame)), frame)


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=400))
def test_any_chunking_of_the_host_stream_gives_the_same_frames(path, chunks):
    _, events = load(path)
    stream = b"".join(data for who, data in events if who == "host")
    assert frames(stream, chunks) == frames(stream)


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_the_chip_model_still_answers_what_the_host_stack_accepted(path):
    uid, events = load(path)
    chip = Pn532Chip(lambda: uid)
    recorded = exchanges(events)
    assert {0x02, 0x4A} <= {command for command, *_ in recorded}
    for command, params, answer, aborted in recorded:
        reply: bytes | None | Pending = chip.execute(command, params)
        if isinstance(reply, Pending):
            if aborted:
                chip.abort()
                continue
            reply = chip.give_up()
        assert reply == answer, f"command 0x{command:02X} {params.hex()}"
        if command == 0x10:
            chip.host_acked()
