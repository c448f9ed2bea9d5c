"""Shared fixtures: paths to shipped configs, a fresh state dir, and leak checks."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings

from firmware import crashpoints
from firmware.threads import ours

pytest_plugins = ["tests.support.reporting"]  # brokers, reporting worlds and captures for any directory

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# the `vending` of the interpreter running the tests (make test-pythons keeps one venv per Python)
VENDING = str(Path(sys.executable).parent / "vending")
SCENARIOS = sorted((CONFIGS / "scenarios").glob("*.yaml"))
DEMO_MACHINE = CONFIGS / "machines" / "demo.yaml"
T = TypeVar("T")


def vending_on_a_full_disk(room: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`vending ARGS` with no file allowed past ``room`` bytes (RLIMIT_FSIZE): the kernel's own failure of a write
    on a full disk (EFBIG, SIGXFSZ ignored), without filling one."""

    def disk_nearly_full() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    return subprocess.run([VENDING, *args], capture_output=True, text=True, timeout=120, preexec_fn=disk_nearly_full)


# Property tests draw the same examples on every CI run (a failure there is reproducible with the
# same command); locally they explore afresh and keep what failed in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def closing() -> Iterator[Callable[[T], T]]:
    """Hand back what it is given and stop it (``stop()``, else ``close()``) when the test ends, last first.

    One teardown for worlds, devices, readers and runners, instead of a try/finally in every test.
    """
    with ExitStack() as stack:

        def register(thing: T) -> T:
            target: Any = thing
            stack.callback(getattr(target, "stop", None) or target.close)
            return thing

        yield register


LEAK_GRACE_S = 5.0  # a stopped worker finishing its last pass is not a leak


@pytest.fixture(autouse=True)
def _no_leaks():
    """Fail a test that leaves a crash hook armed, or any thread of ours (named ``vending-...``) running.

    Ours are daemons, so "non-daemon threads" would see none of them; the name is what tells them apart.
    """
    before = {t.ident for t in threading.enumerate()}
    yield
    crashpoints.set_hook(None)
    started = [t for t in threading.enumerate() if t.ident not in before and (ours(t) or not t.daemon)]
    deadline = time.monotonic() + LEAK_GRACE_S
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    leaked = [t.name for t in started if t.is_alive()]
    assert not leaked, f"test left threads running: {leaked}"


def claim_the_only_cluster(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fail if another xdist worker of this run already started the session's RabbitMQ cluster.

    The ``rabbitmq`` group keeps its tests on one worker only while ``--dist loadgroup`` groups; when
    it silently stopped (pytest 9.2 with pytest-xdist 3.8, pytest-xdist#1386) every worker booted a
    three-node cluster of its own, and on 2 cores the cluster day outran its limit. Said here, by name.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return  # one process: one session, one cluster
    claim = tmp_path_factory.getbasetemp().parent / "rabbitmq-cluster.owner"  # shared by this run's workers
    try:
        fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pytest.fail(f"the rabbitmq xdist group runs on {claim.read_text()} and {worker}, so each would boot a "
                    "cluster of its own: run with --dist loadgroup (make test does); given, it is not grouping "
                    "(pytest-xdist#1386)")  # fmt: skip
    with os.fdopen(fd, "w") as owner:
        owner.write(worker)


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory):
    """One three-node RabbitMQ cluster for the whole session (it takes ~20 s to form); tests share it.

    Tests that use it are in the ``rabbitmq`` xdist group, so one worker runs them all.
    """
    from simulator.servers.rabbitmq import rabbit_cluster, rabbitmq_installed
    from tests.support.packages import missing_package

    if not rabbitmq_installed():
        missing_package("RabbitMQ", "rabbitmq-server")
    claim_the_only_cluster(tmp_path_factory)
    cluster = rabbit_cluster(tmp_path_factory.mktemp("rabbitmq")).start()
    yield cluster
    cluster.stop()
