"""Readers that only talk: RDM6300 (EM4100 frames, repeated while the tag is in the field) and text lines."""

from __future__ import annotations

from firmware.readers import line_frames, rdm6300_frames
from firmware.readers.base import SerialReader


class RDM6300Reader(SerialReader):
    driver = "rdm6300"

    def poll(self, timeout: float) -> str | None | bool:
        frame = self.read_frame(rdm6300_frames.decode, timeout)
        while isinstance(frame, rdm6300_frames.Corrupt):
            frame = self.read_frame(rdm6300_frames.decode, 0)
        return frame.uid if isinstance(frame, rdm6300_frames.Tag) else None


class LineReader(SerialReader):
    driver = "line"

    @property
    def format(self) -> line_frames.LineFormat:
        options = self.spec.options
        return line_frames.LineFormat(options.get("format", "hex"), options.get("endian", "be"))

    def poll(self, timeout: float) -> str | None | bool:
        fmt = self.format
        frame = self.read_frame(lambda b: line_frames.decode(b, fmt), timeout)
        while isinstance(frame, line_frames.Corrupt):
            frame = self.read_frame(lambda b: line_frames.decode(b, fmt), 0)
        return frame.uid if isinstance(frame, line_frames.Uid) else None
