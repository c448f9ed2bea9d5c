"""An authority's push to its machines (the issuer's lost-card list, the school's controls): sent, confirmed."""

from __future__ import annotations

import secrets

from firmware.reporting.mqtt import BrokerAddress, make_client

PUBLISH_TIMEOUT_S = 15.0


def publish(address: BrokerAddress, found: list[tuple[str, str, bool]], who: str) -> None:
    """Send ``(topic, payload, retain)`` messages (QoS 1), waiting until the broker has each; ``RuntimeError``.

    To a cluster (an address listing several nodes) each retained message goes to every node in
    turn: RabbitMQ 3.10 keeps retained messages per node, so a machine that connects to any node
    finds the push only if every node has it. The others go once, to the first node that takes them.
    """
    if address.alternates:
        from dataclasses import replace

        retained = [message for message in found if message[2]]
        for host, port in address.endpoints if retained else ():
            publish(replace(address, host=host, port=port, alternates=(), dial=None), retained, who)
        once = [message for message in found if not message[2]]
        if once:
            publish(replace(address, alternates=()), once, who)
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
