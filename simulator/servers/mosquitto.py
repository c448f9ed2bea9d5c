"""A real Mosquitto (Debian's package) run as a child process on a free loopback port, for tests and soaks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from simulator.servers.broker import PortTaken, free_port, logged_port_taken, on_a_free_port
from simulator.servers.broker_setup import INSIDER, BrokerAccess, BrokerSetup, config_text, write_broker_setup

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


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
        self._port_chosen_here = port is None  # only a port this object chose may be changed for another
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, user="mosquitto") if _has_user("mosquitto") else None
        self.host = "127.0.0.1"
        self.config = config or workdir / "mosquitto.conf"
        self._port_chosen_here &= config is None
        if config is not None:
            if os.geteuid() == 0:  # a test's private tmp dir (0700 root) is closed to the mosquitto user
                self.config = workdir / "mosquitto.as-root.conf"
                self.config.write_text(config.read_text() + "user root\n")
            return
        self._write_open_config()

    def _write_open_config(self) -> None:
        data = self.workdir / "data"
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
        """Started once *this* mosquitto listens on the port: a server of another process there is not it.

        A port found free can be taken by another process before mosquitto binds it; mosquitto then
        exits ("Address already in use") while a connection to the port still succeeds -- to the other
        server. ``PortTaken`` says so; a port this object chose (no port, no config given) is replaced.
        """

        def move() -> None:
            self.port = free_port()
            self._write_open_config()

        return on_a_free_port(lambda: self._start_once(timeout), move if self._port_chosen_here else None)

    def _start_once(self, timeout: float) -> MosquittoProcess:
        path = self.workdir / "mosquitto.log"
        earlier = path.stat().st_size if path.exists() else 0  # what an earlier start logged is not this one's
        log = open(path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if logged_port_taken(path, earlier):
                    raise PortTaken(f"port {self.port} was taken before mosquitto could bind it")
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self.workdir}/mosquitto.log")
            if _listens(self.process.pid, self.host, self.port):
                return self
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
    A port taken before mosquitto bound it: the same setup listens on a fresh one.
    """
    setup = write_broker_setup(workdir / "broker", [], free_port(), insider=True)

    def move() -> None:
        nonlocal setup
        setup = BrokerSetup(setup.directory, free_port())
        setup.config.write_text(config_text(setup.directory.resolve(), setup.port))

    broker = on_a_free_port(
        lambda: MosquittoProcess(workdir / "mosquitto", setup.port, config=setup.config).start(), move
    )
    return broker, BrokerAccess(setup.address(INSIDER), setup)


def _listens(pid: int, host: str, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``host:port`` (Linux: its fds against /proc/net/tcp).

    Elsewhere, whether anything answers there (the check this replaces, blind to another process's server).
    A process that is gone listens nowhere: it exits when the port was taken, and asking whether anything
    answers then found the other process's server (a CI run took such a mosquitto for started).
    """
    if not Path("/proc/self/fd").is_dir():  # no /proc here
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False
    try:
        held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:  # gone between the caller's poll and here (or a descriptor closed while they were read)
        return False
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    for line in table:
        fields = line.split()
        if fields[1] == wanted and fields[3] == LISTEN and f"socket:[{fields[9]}]" in held:
            return True
    return False
