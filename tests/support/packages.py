"""Servers and tools from Debian's packages: ``make test`` installs them as root; otherwise a test that
needs one skips naming the package -- and fails under CI=true, where a skip would hide a gap."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def missing_package(what: str, packages: str) -> NoReturn:
    message = f"{what} is not installed: apt-get install {packages} (make test does this as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_program(name: str, packages: str) -> str:
    """The program's path, or skip/fail naming the packages that bring it."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if found is None:
        missing_package(name, packages)
    return found
