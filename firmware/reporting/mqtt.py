"""Broker addresses (``mqtt://host:port``, ``mqtts://...``) and paho client construction."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlparse

from firmware.errors import VendingError


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
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise VendingError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
        tls = parsed.scheme == "mqtts"
        if (cert_file is None) != (key_file is None):
            raise VendingError("a client certificate needs both --cert and --cert-key")
        return cls(
            parsed.hostname,
            parsed.port or (8883 if tls else 1883),
            username or parsed.username,
            password or parsed.password,
            tls,
            ca_file,
            cert_file,
            key_file,
        )

    def __str__(self) -> str:  # no password in logs
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


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
        context = ssl.create_default_context(cafile=address.ca_file)
        if address.cert_file and address.key_file:
            context.load_cert_chain(address.cert_file, address.key_file)
        client.tls_set_context(context)
    client.reconnect_delay_set(min_delay=1, max_delay=8)
    client.max_inflight_messages_set(100)
    return client
