"""An authority's push to its machines (the issuer's lost-card list, the school's controls): sent, confirmed."""

from __future__ import annotations

import secrets

from firmware.reporting.mqtt import BrokerAddress, make_client

PUBLISH_TIMEOUT_S = 15.0


def publish(address: BrokerAddress, found: list[tuple[str, str, bool]], who: str, *, every_node: bool = False) -> None:
    """Send ``(topic, payload, retain)`` messages (QoS 1), waiting until the broker has each; ``RuntimeError``.

    ``every_node``: to each node of a clustered address in turn (RabbitMQ 3.10 keeps retained
    messages per node, so a retained push reaches a machine on any node only if every node has it).
    """
    if every_node and address.alternates:
        from dataclasses import replace

        for host, port in address.endpoints:
            publish(replace(address, host=host, port=port, alternates=(), dial=None), found, who)
        return
    # a client id of its own each time: a broker still closing the last publisher's session keeps this one
    client = make_client(address, f"{who}-{secrets.token_hex(4)}", persistent=False)
    client.connect(*address.endpoint, keepalive=15)
    client.loop_start()
    try:
        sent = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in found]
        for info in sent:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise RuntimeError(f"the broker {address} did not take the {who} push within {PUBLISH_TIMEOUT_S:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
