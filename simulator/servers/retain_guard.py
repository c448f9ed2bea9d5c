"""Builds the broker's retain guard, a small Mosquitto plugin (``plugins/retain_guard.c``).

Mosquitto's ACL file cannot restrict the retain flag per topic; the plugin refuses a retained message
on every topic but a machine's status and stock, before the ACL file is asked. It is compiled once per
``vending broker setup`` with the system C compiler against Debian's Mosquitto plugin headers, so the
generated broker loads exactly the plugin for the Mosquitto installed next to it.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib.resources import as_file, files
from pathlib import Path

from firmware.errors import VendingError

PACKAGES = "gcc libc6-dev mosquitto-dev libmosquitto-dev"  # compiler, libc headers, the plugin headers
HEADERS = (Path("/usr/include/mosquitto_broker.h"), Path("/usr/include/mosquitto.h"))


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def buildable() -> bool:
    """Whether this host can build the guard: a C compiler and Mosquitto's plugin headers."""
    return compiler() is not None and all(header.exists() for header in HEADERS)


def build_retain_guard(directory: Path) -> Path:
    """``directory/retain_guard.so``, built from the packaged source; a clear error when it cannot be."""
    cc = compiler()
    missing = [str(header) for header in HEADERS if not header.exists()]
    if cc is None or missing:
        lacking = "a C compiler" if cc is None else ", ".join(missing)
        raise VendingError(
            f"the broker's retain guard (a Mosquitto plugin) cannot be built: no {lacking}; "
            f"install them with `apt-get install {PACKAGES}`"
        )
    target = directory / "retain_guard.so"
    with as_file(files("simulator.servers") / "plugins" / "retain_guard.c") as source:
        done = subprocess.run(
            [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(target), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise VendingError(f"building the broker's retain guard failed ({cc}):\n{done.stderr.strip()}")
    return target
