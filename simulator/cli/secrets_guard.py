"""A private key is never written where git would pick it up: inside a work tree, not ignored.

``git check-ignore`` decides, as git itself would when the user runs ``git add .``. Outside a work
tree, or without git, nothing is checked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from firmware.errors import VendingError


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path if path.is_dir() else path.parent


def refuse_if_tracked(target: Path) -> None:
    """VendingError when ``target`` (a file or the directory keys go into) is in a git work tree and not ignored."""
    git = shutil.which("git")
    if git is None:
        return
    here = _existing(target)
    top = subprocess.run([git, "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0:
        return  # not in a work tree
    probe = target.resolve() / "private.key" if target.is_dir() or not target.suffix else target.resolve()
    ignored = subprocess.run([git, "-C", top.stdout.strip(), "check-ignore", "-q", str(probe)], capture_output=True)
    if ignored.returncode == 1:
        raise VendingError(
            f"{target}: private keys would go inside the git work tree {top.stdout.strip()} and git does not "
            "ignore them there; add the path to .gitignore, or write the keys outside the work tree"
        )
