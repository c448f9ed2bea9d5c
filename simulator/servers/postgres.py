"""A real PostgreSQL (Debian's package) run from a temp dir on a free loopback port, for tests."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from simulator.servers.broker import PortTaken, free_port, logged_port_taken, on_a_free_port


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresProcess:
    """initdb + pg_ctl as the `postgres` user when run as root (PostgreSQL refuses to run as root)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binaries = pg_bin()
        if binaries is None:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = binaries
        self.workdir = workdir
        self.port = port or free_port()
        self._port_chosen_here = port is None  # only a port this object chose may be changed for another
        self.data = workdir / "pgdata"

    def _run(self, *args: str | Path) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        except subprocess.CalledProcessError as exc:  # the tool's own words say why; shown with the traceback
            exc.add_note(f"what it printed: {(exc.stderr or exc.stdout or 'nothing').strip()[-2000:]}")
            raise

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/vending"

    def start(self) -> PostgresProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, user="postgres")
            os.chmod(self.workdir, 0o755)
            for parent in self.workdir.parents:  # the postgres user must reach its data dir
                if parent == Path("/"):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
        self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")

        def move() -> None:
            self.port = free_port()

        on_a_free_port(self._start_server, move if self._port_chosen_here else None)
        self._run(self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "vending")
        return self

    def _start_server(self) -> None:
        """pg_ctl start; ``PortTaken`` when the log says another process bound the port first."""
        log = self.workdir / "postgres.log"
        earlier = log.stat().st_size if log.exists() else 0
        try:
            self._pg_ctl_start(log)
        except subprocess.CalledProcessError as exc:
            if logged_port_taken(log, earlier):
                raise PortTaken(f"port {self.port} was taken before PostgreSQL could bind it") from exc
            raise

    def _pg_ctl_start(self, log: Path) -> None:
        self._run(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-l",
            log,
            "-w",
            "start",
            "-o",
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=on"
            # an erasure must leave no old row in any file: spent WAL segments are deleted, not reused
            # (docs/backends.md, "Erasure on PostgreSQL")
            " -c wal_recycle=off -c wal_keep_size=0",
        )

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass

    def __enter__(self) -> PostgresProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
