"""Broker addresses (``mqtt://host:port``, ``mqtts://...``) and paho client construction."""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import ParseResult, urlparse

from firmware.errors import VendingError

PASSWORD_ENV = "VENDING_BROKER_PASSWORD"  # where every command that connects reads the broker password from


def server_url(url: str, label: str, expected: str, schemes: tuple[str, ...]) -> tuple[ParseResult, str, int | None]:
    """``scheme://host[:port]`` and nothing after it: (the parse, host, port), or ``VendingError`` naming ``url``.

    A port out of range or with letters was a traceback (exit 70), port 0 the default port, and a path,
    query or fragment (``/vhost``, ``?ca=...``) was dropped without a word.
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if parsed.scheme not in schemes or not host:
        raise VendingError(f"{label} {url!r}: expected {expected}")
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parsed.netloc.endswith(":")):
        raise VendingError(f"{label} {url!r}: the port is a whole number from 1 to 65535")
    if parsed.path not in ("", "/") or parsed.params or parsed.query or parsed.fragment:
        raise VendingError(f"{label} {url!r}: expected {expected}, nothing after it")
    return parsed, host, port


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None  # a client certificate: on the generated broker config, it is the identity
    key_file: str | None = None
    # Dial this TCP endpoint instead of host:port (a proxy in front of the broker, as curl's --connect-to);
    # TLS still checks the certificate against ``host``.
    dial: tuple[str, int] | None = None
    # More nodes of the same cluster (``--broker URL,URL,...``): after a lost or refused connection the
    # client tries the next one, in order, with paho's back-off; the persistent session and the outbox
    # carry a machine across (docs/scaling.md)
    alternates: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(
        cls,
        url: str,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> BrokerAddress:
        if "," in url:
            first, *others = (cls.parse(one.strip(), username, password, ca_file, cert_file, key_file)
                              for one in url.split(","))  # fmt: skip
            if any(other.tls != first.tls for other in others):
                raise VendingError(f"broker URLs {url!r}: every node of one broker uses the same scheme")
            return replace(first, alternates=tuple((other.host, other.port) for other in others))
        parsed, host, port = server_url(url, "broker URL", "mqtt://host:port or mqtts://host:port", ("mqtt", "mqtts"))
        tls = parsed.scheme == "mqtts"
        if (cert_file is None) != (key_file is None):
            raise VendingError("a client certificate needs both --cert and --cert-key")
        given = [name for name, value in (("--ca", ca_file), ("--cert", cert_file), ("--cert-key", key_file)) if value]
        if given and not tls:  # never fall back to plaintext with the user's credentials on the wire
            secure_port = 8883 if port in (None, 1883) else port  # MQTT's TLS port, unless the user chose one
            secure = f"mqtts://{host}:{secure_port}"
            raise VendingError(f"broker URL {url!r}: {', '.join(given)} need TLS; use {secure} (mqtt:// is plaintext)")
        for name, value in (("--ca", ca_file), ("--cert", cert_file), ("--cert-key", key_file)):
            if value and not os.path.isfile(value):  # said here, naming it, not as TLS's bare "[Errno 2]"
                raise VendingError(f"{name} {value}: no such file")
        return cls(
            host,
            port or (8883 if tls else 1883),
            username or parsed.username,
            password or parsed.password,
            tls,
            ca_file,
            cert_file,
            key_file,
        )

    @property
    def endpoint(self) -> tuple[str, int]:
        """Where the TCP connection goes."""
        return self.dial or (self.host, self.port)

    @property
    def endpoints(self) -> tuple[tuple[str, int], ...]:
        """Every node to try, in order."""
        return (self.endpoint, *self.alternates)

    def __str__(self) -> str:  # no password in logs
        scheme = "mqtts" if self.tls else "mqtt"
        return ",".join(f"{scheme}://{host}:{port}" for host, port in ((self.host, self.port), *self.alternates))


def reachable(address: BrokerAddress, timeout_s: float = 5.0) -> None:
    """VendingError naming the broker and why, when nothing accepts a connection at its address.

    For tools a person waits on (a backend starting, ``cmd send``): a refused or unroutable address
    is said at once instead of after a silent wait. The machine itself never needs this: it starts
    offline and its publisher keeps trying.
    """
    reason = ""
    for endpoint in address.endpoints:  # a cluster is reachable when any of its nodes is
        try:
            socket.create_connection(endpoint, timeout=timeout_s).close()
            return
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
    raise VendingError(f"cannot reach the broker at {address}: {reason.lower()}")


def machine_client_id(machine: str) -> str:
    """A machine's MQTT client id: its persistent session on the broker is named after it."""
    return f"machine-{machine}"


def make_client(address: BrokerAddress, client_id: str, *, persistent: bool = True):  # type: ignore[no-untyped-def]
    """A paho 2.x client, MQTT 3.1.1 (what amqtt and Mosquitto both speak), persistent session by default."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent, protocol=mqtt.MQTTv311
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set_context(_tls_context(address))
    client.reconnect_delay_set(min_delay=1, max_delay=8)
    client.max_inflight_messages_set(100)
    client.on_socket_open = _no_delay
    if address.alternates:
        client.on_pre_connect = _NextNode(address.endpoints)
    return client


class _NextNode:
    """Before each reconnect, the next node of the cluster (the first connect goes to the first).

    paho calls this as it (re)opens the socket; the host and port it dials are set directly because
    its public setters refuse while a connection is being opened -- which is exactly now.
    """

    def __init__(self, endpoints: tuple[tuple[str, int], ...]) -> None:
        self.endpoints = endpoints
        self.attempts = 0

    def __call__(self, client: Any, userdata: Any) -> None:
        host, port = self.endpoints[self.attempts % len(self.endpoints)]
        self.attempts += 1
        client._host, client._port = host, port  # noqa: SLF001 - see the docstring


def drop(client: Any) -> None:
    """Close the client's socket without a DISCONNECT, as a power cut or a killed process leaves it.

    The operating system closes a dead process's sockets: the broker sees the connection go at once and
    publishes the Will, instead of holding a half-open session until the keep-alive runs out.
    """
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def _tls_context(address: BrokerAddress) -> ssl.SSLContext:
    """The client's TLS context; a file that is not what it should be is named (TLS alone says "PEM lib")."""
    try:
        context = ssl.create_default_context(cafile=address.ca_file)
    except ssl.SSLError as exc:
        raise VendingError(f"--ca {address.ca_file}: not a CA certificate in PEM ({exc.reason})") from None
    if address.dial:
        context = _NamedContext.like(context, address.host, address.ca_file)
    if address.cert_file and address.key_file:
        try:
            context.load_cert_chain(address.cert_file, address.key_file)
        except ssl.SSLError as exc:
            raise VendingError(
                f"--cert {address.cert_file} / --cert-key {address.key_file}: not a certificate and its key in PEM "
                f"({exc.reason})"
            ) from None
    return context


def _no_delay(client: object, userdata: object, sock: Any) -> None:
    """TCP_NODELAY: a small message (an authorisation request, an ack) goes at once.

    With Nagle's algorithm it waits for the peer's delayed ACK of the previous one (40 ms on Linux).
    """
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (a test's pipe): nothing to tune
        pass


class _NamedContext(ssl.SSLContext):
    """Checks the broker's certificate against its own name when the socket goes through a proxy.

    paho names the host it dialled (the proxy) as the server; the certificate belongs to the broker.
    """

    broker_name: str

    @classmethod
    def like(cls, model: ssl.SSLContext, broker_name: str, ca_file: str | None) -> _NamedContext:
        """The default context's checks (options, flags, trust) with the broker's name pinned."""
        context = cls(ssl.PROTOCOL_TLS_CLIENT)
        context.broker_name = broker_name
        context.options, context.verify_flags = model.options, model.verify_flags
        context.load_verify_locations(cafile=ca_file) if ca_file else context.load_default_certs()
        return context

    def wrap_socket(self, sock, **options):  # type: ignore[no-untyped-def,override]
        return super().wrap_socket(sock, **{**options, "server_hostname": self.broker_name})
