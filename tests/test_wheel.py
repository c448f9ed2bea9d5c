"""The package as a user installs it: a wheel in a fresh venv outside the checkout, run from an empty directory.

Nothing from the checkout is on the path: the wheel must carry the rule sets, the catalog, the
scenarios, ``init``'s templates and the AsyncAPI contract the backends check reports against.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
NOT_SOURCES = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "node_modules")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh venv with only the wheel built from this checkout (and its dependencies) installed."""
    place = tmp_path_factory.mktemp("wheel")
    dist = place / "dist"
    # built from a copy of the sources: pip builds in the tree it is given, and the suite's other processes
    # write bytecode into this one meanwhile (a file listed, then renamed away, fails the build now and then)
    source = shutil.copytree(ROOT, place / "source", ignore=shutil.ignore_patterns(*NOT_SOURCES))
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)]
    built = subprocess.run(build, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list(dist.glob("campus_vending-*.whl"))
    assert len(wheels) == 1, wheels
    venv = place / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = [str(venv / "bin" / "pip"), "install", "-q", str(wheels[0])]
    done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def user(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_runs_the_first_hour_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    where = user(installed, tmp_path, "python", "-c", "import firmware, simulator; print(firmware.__file__)")
    assert where.returncode == 0 and str(ROOT) not in where.stdout, where.stdout + where.stderr

    demo = user(installed, tmp_path, "vending", "demo")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Vendor learned" in demo.stdout and "School knows" in demo.stdout

    assert user(installed, tmp_path, "vending", "init", "x").returncode == 0
    checked = user(installed, tmp_path, "vending", "check", "--strict", "x")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "x/scenarios/first-morning.yaml: ok (scenario)" in checked.stdout

    ran = user(installed, tmp_path, "vending", "run", "x/scenarios/first-morning.yaml")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "0 failed" in ran.stdout

    verdicts = user(installed, tmp_path, "vending", "rules", "check", "--json")  # the packaged catalog
    assert verdicts.returncode in (0, 1), verdicts.stderr  # 1: the catalog keeps a refused product on purpose
    assert '"allowed"' in verdicts.stdout

    alone = user(installed, tmp_path, "python", "-m", "firmware", "-h")
    assert alone.returncode == 0 and "--reader" in alone.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x"], "the commands wrote only what the user asked"
