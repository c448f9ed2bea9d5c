"""Run the dashboard beside a backend: uvicorn in a thread, stopped with the backend."""

from __future__ import annotations

import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from firmware.domain import WHOLE_NUMBER
from firmware.errors import VendingError
from firmware.threads import daemon


class DashboardAddressError(VendingError):
    """``--http`` that is not HOST:PORT, or a port that cannot be bound."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port), or a clear error."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not WHOLE_NUMBER.fullmatch(port) or not 0 <= int(port) <= 65535:
        raise DashboardAddressError(f"--http: expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass
class DashboardServer:
    app: Starlette
    host: str
    port: int

    def start(self, timeout_s: float = 10.0) -> DashboardServer:
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = daemon(self._server.run, "dashboard-http")
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DashboardAddressError(f"--http: could not listen on {self.host}:{self.port}")
            time.sleep(0.02)
        if self.port == 0:  # an ephemeral port (tests): the one the socket got
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True  # open event streams never end by themselves
        self._thread.join(timeout=10)
