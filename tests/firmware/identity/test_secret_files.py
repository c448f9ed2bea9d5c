"""Private directories and key files: made by two fleet workers at once, a symlink in their place, a full disk."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from firmware.identity.secretfile import private_dir


def test_a_directory_made_by_another_process_between_the_check_and_mkdir_is_fine(tmp_path: Path, monkeypatch):
    target = tmp_path / "keys" / "machines"
    target.mkdir(parents=True, mode=0o700)
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self == target else real_exists(self))
    assert private_dir(target) == target  # the other process won the race: no FileExistsError


def test_a_new_private_directory_is_0700_whatever_the_umask(tmp_path: Path):
    made = private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_file_where_a_directory_should_be_still_fails(tmp_path: Path):
    (tmp_path / "keys").write_text("not a directory")
    with pytest.raises(NotADirectoryError):
        private_dir(tmp_path / "keys" / "machines")


def test_a_key_s_public_half_replaces_a_symlink_in_its_place_and_never_writes_through_it(tmp_path: Path):
    """``Identity.save`` wrote the ``.pub`` with ``write_bytes``, through whatever link stood there (and the
    seal pair's ``.pub`` likewise): under ``--force`` a link planted beside a key sent the PEM to its target."""
    from firmware.identity.keyset import write_seal_pair
    from firmware.identity.signing import Identity, PublicKey

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("vendor.pub", "issuer-seal.pub"):
        (keys / name).symlink_to(target)
    saved = Identity.generate("vendor").save(keys / "vendor.key", force=True)
    write_seal_pair(keys, "issuer-seal", force=True)
    assert target.read_text() == "keep me"
    for name in ("vendor.pub", "issuer-seal.pub"):
        assert not (keys / name).is_symlink() and (keys / name).is_file()
    assert PublicKey.load("vendor", saved.with_suffix(".pub")).kid == Identity.load("vendor", saved).public.kid


@pytest.mark.parametrize(
    "command",
    [["keys", "dev-set", "--dir", "{dir}"], ["keys", "init", "--state-dir", "{dir}", "--valid-until", "2099-07-31"]],
    ids=["dev-set", "term key"],
)
def test_a_key_the_disk_cannot_hold_is_named_and_nothing_is_left(tmp_path: Path, command: list[str]):
    """A full disk (no file may pass 32 bytes): "error: [Errno 27] File too large", which key unsaid."""
    from tests.conftest import vending_on_a_full_disk

    keys = tmp_path / "keys"
    out = vending_on_a_full_disk(32, *(part.format(dir=keys) for part in command))
    assert out.returncode == 2, out.stderr
    named = rf"{re.escape(str(keys))}/[a-z_.]+: cannot write: File too large; nothing written\n"
    assert re.fullmatch(named, out.stderr), out.stderr
    assert list(keys.iterdir()) == [], "no half key, no temporary file"
