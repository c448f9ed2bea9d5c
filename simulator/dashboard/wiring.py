"""The dashboard of a running vendor backend: its store, its liveness view and its vendor key."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from starlette.applications import Starlette

from simulator.backends.vendor import VendorBackend
from simulator.dashboard.app import create_app
from simulator.dashboard.board import Board, read_board
from simulator.dashboard.operator import NotSent, Operator, wall_clock

SILENCE_S = 90.0  # three missed heartbeats (the machine beats every 30 s)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def dashboard_for(
    vendor: VendorBackend, token: str, clock: Callable[[], datetime] = wall_clock, interval_s: float = 1.0
) -> Starlette:
    """Buttons sign with the backend's own vendor key and publish on its MQTT session (QoS 1)."""

    def read() -> Board:
        return read_board(vendor.store, heard=vendor.heard_lately(SILENCE_S))

    def publish(topic: str, payload: str) -> None:
        if not vendor.client.is_connected():  # paho would queue it and send it whenever the link is back
            raise NotSent("the backend has no broker link right now; nothing sent: press again once it is back")
        vendor.client.publish(topic, payload, qos=1)

    return create_app(read, token, Operator(vendor.identity, publish, clock), interval_s)
