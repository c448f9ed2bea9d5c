"""Byte-vector tables (hex in -> frame out, frame in -> hex out) and property tests over random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.readers import line_frames, pn532_frames, rdm6300_frames
from firmware.readers.pn532_frames import Ack, Corrupt, ErrorFrame, Info, Nack

# verified vectors: shared/protocols.md section 1.4 (nfcpy and libnfc constants)
PN532 = [
    ("GetFirmwareVersion cmd", "0000FF02FED4022A00", Info(0xD4, bytes([0x02]))),
    ("GetFirmwareVersion rsp", "0000FF06FAD50332010607E800", Info(0xD5, bytes.fromhex("0332010607"))),
    ("SAMConfiguration cmd", "0000FF05FBD4140117000000", None),  # DCS of this vector is ...00: see below
    ("SAMConfiguration rsp", "0000FF02FED5151600", Info(0xD5, bytes([0x15]))),
    ("InListPassiveTarget cmd", "0000FF04FCD44A0100E100", Info(0xD4, bytes.fromhex("4A0100"))),
    (
        "InListPassiveTarget 4-byte uid",
        "0000FF0CF4D54B0101000408 04DEADBEEF9600".replace(" ", ""),
        Info(0xD5, bytes.fromhex("4B01010004080" + "4DEADBEEF")),
    ),
    (
        "InListPassiveTarget 7-byte uid",
        "0000FF0FF1D54B010100440007 0416C6C2D738816100".replace(" ", ""),
        Info(0xD5, bytes.fromhex("4B0101004400070416C6C2D73881")),
    ),
    ("InListPassiveTarget no card", "0000FF03FDD54B00E000", Info(0xD5, bytes.fromhex("4B00"))),
    ("nfcpy test vector cmd", "0000FF05FBD40031323396 00".replace(" ", ""), Info(0xD4, bytes.fromhex("00313233"))),
    ("ACK", "0000FF00FF00", Ack()),
    ("NACK", "0000FFFF0000", Nack()),
    ("error", "0000FF01FF7F8100", ErrorFrame()),
]


@pytest.mark.parametrize("name,wire,frame", [c for c in PN532 if c[2] is not None], ids=[c[0] for c in PN532 if c[2]])
def test_pn532_vectors_both_ways(name, wire, frame):
    raw = bytes.fromhex(wire)
    assert pn532_frames.decode(raw) == (len(raw), frame)
    assert pn532_frames.encode(frame) == raw


def test_pn532_sam_configuration_vector_from_nfcpy():
    # nfcpy sends SAMConfiguration as 0000ff05fbd4140100001700 (mode 01, timeout 00, irq 00)
    raw = bytes.fromhex("0000ff05fbd4140100001700")
    assert pn532_frames.decode(raw) == (len(raw), Info(0xD4, bytes.fromhex("14010000")))


def test_pn532_extended_frame_round_trip():
    frame = Info(0xD5, bytes([0x41]) + bytes(301))  # TFI + 302 = 303 bytes (0x012F)
    wire = pn532_frames.encode(frame)
    assert wire[:8] == bytes.fromhex("0000FFFFFF012FD0")
    assert pn532_frames.decode(wire) == (len(wire), frame)


def test_pn532_bad_checksums_are_reported_not_raised():
    good = bytes.fromhex("0000FF02FED5151600")
    bad_dcs = good[:-2] + b"\x17\x00"
    assert pn532_frames.decode(bad_dcs) == (len(bad_dcs), Corrupt("data checksum mismatch"))
    bad_lcs = bytes.fromhex("0000FF02FFD5151600")
    consumed, frame = pn532_frames.decode(bad_lcs)
    assert isinstance(frame, Corrupt) and consumed == 3  # skip the start code, look for the next


def test_pn532_partial_frames_wait_and_noise_is_skipped():
    good = bytes.fromhex("0000FF02FED5151600")
    for cut in range(1, len(good)):
        assert pn532_frames.decode(good[:cut])[1] is None
    assert pn532_frames.decode(b"\x55\x55\x13" + good) == (3, None)  # wake-up bytes and noise


RDM = [("67003B51C6", b"\x0267003B51C6CB\x03"), ("1A0056E4B3", b"\x021A0056E4B31B\x03")]


@pytest.mark.parametrize("uid,wire", RDM)
def test_rdm6300_vectors_both_ways(uid, wire):
    assert rdm6300_frames.decode(wire) == (14, rdm6300_frames.Tag(uid))
    assert rdm6300_frames.encode(rdm6300_frames.Tag(uid)) == wire


def test_rdm6300_invalid_checksum_vector():
    assert rdm6300_frames.decode(b"\x0268003B51C6CB\x03") == (14, rdm6300_frames.Corrupt("checksum mismatch"))


LINE = [
    ("hex", line_frames.LineFormat(), b"DEADBEEF\r\n", "DEADBEEF"),
    ("dec be", line_frames.LineFormat("dec", "be"), b"3735928559\r\n", "DEADBEEF"),
    ("dec le", line_frames.LineFormat("dec", "le"), b"4022250974\r\n", "DEADBEEF"),
    ("7-byte hex, LF", line_frames.LineFormat(terminator=b"\n"), b"04a1b2c3d4e5f6\n", "04A1B2C3D4E5F6"),
]


@pytest.mark.parametrize("name,fmt,wire,uid", LINE, ids=[c[0] for c in LINE])
def test_line_vectors(name, fmt, wire, uid):
    assert line_frames.decode(wire, fmt) == (len(wire), line_frames.Uid(uid))
    if wire == wire.upper():  # the encoder writes upper-case hex
        assert line_frames.encode(line_frames.Uid(uid), fmt) == wire


def test_parallax_style_line_with_leading_lf():
    # Parallax 28140: 0x0A + 10 hex + 0x0D -- the leading LF is an empty line, then a 5-byte id is refused
    consumed, frame = line_frames.decode(b"\n0F0184F07A\r\n")
    assert (consumed, frame) == (1, None)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, i = [], 0
    for size in sizes:
        chunks.append(data[i : i + size])
        i += size
    chunks.append(data[i:])
    return chunks


def run_decoder(decode, stream: list[bytes]):
    buffer, found = b"", []
    for chunk in stream:
        buffer += chunk
        while buffer:
            consumed, frame = decode(buffer)
            assert 0 <= consumed <= len(buffer)
            if frame is not None:
                found.append(frame)
            if consumed == 0:
                break
            buffer = buffer[consumed:]
    return found


frames_pn532 = st.builds(
    lambda tfi, data: Info(tfi, bytes(data)), st.sampled_from([0xD4, 0xD5]), st.binary(min_size=1, max_size=40)
)
noise = st.binary(max_size=20).map(lambda b: b.replace(b"\x00\xff", b"\x01\xff"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(noise, frames_pn532), min_size=1, max_size=6), st.lists(st.integers(1, 9), max_size=30))
def test_pn532_every_frame_embedded_in_noise_is_found(parts, sizes):
    wire = b"".join(n + pn532_frames.encode(f) for n, f in parts)
    found = [f for f in run_decoder(pn532_frames.decode, chunked(wire, sizes)) if isinstance(f, Info)]
    assert found == [f for _, f in parts]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 17), max_size=40))
def test_random_bytes_never_raise(data, sizes):
    for decode in (
        pn532_frames.decode,
        rdm6300_frames.decode,
        lambda b: line_frames.decode(b, line_frames.LineFormat("dec", "le")),
    ):
        run_decoder(decode, chunked(data, sizes))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=10).map(lambda b: b.replace(b"\x02", b"")), st.binary(min_size=5, max_size=5)),
        min_size=1,
        max_size=5,
    ),
    st.lists(st.integers(1, 5), max_size=20),
)
def test_rdm6300_every_tag_in_noise_is_found(parts, sizes):
    wire = b"".join(n + rdm6300_frames.encode(rdm6300_frames.Tag(t.hex().upper())) for n, t in parts)
    tags = [f for f in run_decoder(rdm6300_frames.decode, chunked(wire, sizes)) if isinstance(f, rdm6300_frames.Tag)]
    assert tags == [rdm6300_frames.Tag(t.hex().upper()) for _, t in parts]
