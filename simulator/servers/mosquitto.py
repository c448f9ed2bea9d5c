"""A real Mosquitto (Debian's package) run as a child process on a free loopback port, for tests and soaks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from simulator.servers.broker import free_port
from simulator.servers.broker_setup import INSIDER, BrokerAccess, write_broker_setup

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((path for path in CANDIDATES if os.access(path, os.X_OK)), None)


class MosquittoProcess:
    """Foreground mosquitto with its own config and persistence dir; stop() kills it like a crash."""

    def __init__(self, workdir: Path, port: int | None = None, config: Path | None = None) -> None:
        """``config``: a generated TLS + ACL config (``vending broker setup``) instead of an open one."""
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, user="mosquitto") if _has_user("mosquitto") else None
        self.config = config or workdir / "mosquitto.conf"
        if config is not None:
            if os.geteuid() == 0:  # a test's private tmp dir (0700 root) is closed to the mosquitto user
                self.config = workdir / "mosquitto.as-root.conf"
                self.config.write_text(config.read_text() + "user root\n")
            return
        self.config.write_text(
            "per_listener_settings false\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "set_tcp_nodelay true\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The running broker's process id (a benchmark reads its CPU time from /proc)."""
        if self.process is None:
            raise RuntimeError("mosquitto is not started")
        return self.process.pid

    def start(self, timeout: float = 10.0) -> MosquittoProcess:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self.workdir}/mosquitto.log")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def diagnosis(self, lines: int = 8) -> str:
        """Whether the broker still runs, and the end of its log: what a failed connection is explained by."""
        state = "running" if self.running else f"not running (exit {self.process.poll() if self.process else None})"
        try:
            tail = (self.workdir / "mosquitto.log").read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            tail = [f"(no log: {exc})"]
        return f"mosquitto on port {self.port} {state}; its log ends:\n" + "\n".join(tail)

    def stop(self) -> None:
        """SIGKILL: no clean shutdown, as an outage would be."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> MosquittoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def secured_mosquitto(workdir: Path) -> tuple[MosquittoProcess, BrokerAccess]:
    """Mosquitto as ``vending broker setup`` writes it (TLS, a certificate per party, ACLs), started.

    With the insider account, so captures and hostile-input tests have a client with every right.
    """
    setup = write_broker_setup(workdir / "broker", [], free_port(), insider=True)
    broker = MosquittoProcess(workdir / "mosquitto", setup.port, config=setup.config).start()
    return broker, BrokerAccess(setup.address(INSIDER), setup)
