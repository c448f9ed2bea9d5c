"""A path that names an endless file (/dev/zero, by a slip) is refused, not read until memory runs out.

Every file a person names -- a config or scenario, a key, a card image, a roster, an approval, a reader
script -- was read whole before anything looked at it: `vending check /dev/zero` grew until the box ran
out of memory. Each is now read only as far as its kind of file can reach (firmware/files.py). The
commands run with their address space capped at 2 GiB, so a reader that reads on fails here at once
instead of taking the box down.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VENDING

ENDLESS = "/dev/zero"


def capped_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["check", ENDLESS], "file is more than 1000000 bytes (no regular file); the limit is 1000000"),
        (["card", "show", ENDLESS, "--keys", "{keys}"], "more than 65536 bytes (no regular file)"),
        (["backend", "school", "--db", "{tmp}/school.db", "--roster", ENDLESS], "cannot read the roster: more than"),
        (["keys", "technician", "--key", ENDLESS, "--card", "04A1B2C3"], "--key /dev/zero: more than 65536 bytes"),
        (
            ["cmd", "send", "restock", "A1=5", "--machine", "M-1", "--key", ENDLESS, "--broker", "mqtt://127.0.0.1:1"],
            "cannot read the key file: more than 65536 bytes",
        ),  # fmt: skip
        (
            ["reader", "emulate", "--protocol", "pn532", "--link", "{tmp}/reader", "--script", ENDLESS],
            "--script /dev/zero: cannot read: more than 1000000 bytes",
        ),  # fmt: skip
    ],
    ids=["config", "card image", "roster", "technician key", "signing key", "reader script"],
)
def test_an_endless_file_is_refused_by_name(tmp_path: Path, command: list[str], reason: str) -> None:
    keys = tmp_path / "keys"
    assert subprocess.run([VENDING, "keys", "dev-set", "--dir", str(keys)], capture_output=True).returncode == 0
    argv = [part.format(keys=keys, tmp=tmp_path) for part in command]
    out = subprocess.run([VENDING, *argv], capture_output=True, text=True, timeout=120, preexec_fn=capped_memory)
    assert out.returncode == 2 and ENDLESS in out.stderr and reason in out.stderr, out.stderr[-2000:]
