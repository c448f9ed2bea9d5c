"""Private directories under concurrent creation: two fleet workers enrol machines into one keys/ at once."""

from __future__ import annotations

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
