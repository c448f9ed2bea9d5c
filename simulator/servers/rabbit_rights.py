"""RabbitMQ definitions (users, permissions, queues, policies) derived from the Mosquitto ACL: rights declared once.

``acl_text`` (broker_setup.py) says who may read and write which MQTT topics. RabbitMQ's MQTT plugin
checks the same rights as *topic permissions* on ``amq.topic``: regular expressions over the AMQP
routing key, in which ``/`` is ``.``, ``+`` is ``*`` and ``#`` is ``#`` (a subscription is checked in
that form, wildcards included). So each ACL line becomes one alternative of a user's read or write
expression, and a machine's ``pattern`` lines are written out with its id for its own user: a
machine may publish only its own topics and read only its own commands and acks, as on Mosquitto.

What Mosquitto does not have is the AMQP side: resource permissions. A machine may configure only
its own MQTT session queues (``mqtt-subscription-machine-<id>qos0|1``), so a certificate cannot
subscribe through another machine's session; a party's backend reads only its own quorum queue and
configures nothing (the queues, bindings and limits are declared here, by the operator).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from firmware.reporting.mqtt import machine_client_id
from simulator.backends.amqp import EXCHANGE, ordered_queue, party_queue, routing_key
from simulator.backends.issuer import IssuerBackend
from simulator.backends.requests import request_topic
from simulator.backends.school import SchoolBackend
from simulator.backends.vendor import VendorBackend
from simulator.servers.broker_setup import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES, acl_text

VHOST = "/"
SESSION_QUEUES = "mqtt-subscription-"  # the MQTT plugin's queue per client id and QoS (3.10)
SESSION_TTL_MS = 24 * 3600 * 1000  # a session queue nobody uses for a day goes (mqtt.subscription_ttl)
# client-id prefixes each party's MQTT tools connect with (service.py, commands.py, party_client.py, push.py)
CLIENT_PREFIXES = {"vendor": ("vendor", "operator"), "issuer": ("issuer",), "school": ("school",)}
PARTY_QUEUE_BYTES = 1024 * 1024 * 1024  # a party's backlog while all its backends are down: a district's day


def _expression(topic_filter: str, machine: str | None) -> str:
    """One ACL topic filter as a routing-key expression (``+`` also admits a subscription's own ``*``)."""
    parts = []
    for level in topic_filter.split("/"):
        if level == "+":
            parts.append(r"[^.]+")
        elif level == "#":
            parts.append(r".*")
        elif level == "%u" and machine is not None:
            parts.append(re.escape(machine))
        else:
            parts.append(re.escape(level))
    return r"\.".join(parts)


def _either(alternatives: list[str]) -> str:
    return "^(?:" + "|".join(alternatives) + ")$" if alternatives else "^$"


def acl_rights(acl: str) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[str]]]:
    """({user: {read: [...], write: [...]}}, {read: [...], write: [...]} for every machine's patterns)."""
    users: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"read": [], "write": []})
    patterns: dict[str, list[str]] = {"read": [], "write": []}
    user = None
    for line in acl.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
            continue
        access, topic = words[1], words[2]  # "topic|pattern read|write|readwrite FILTER"
        modes = ("read", "write") if access == "readwrite" else (access,)
        target = patterns if words[0] == "pattern" else users[str(user)]
        for mode in modes:
            target[mode].append(topic)
    return dict(users), patterns


def definitions(machines: list[str], *, insider: bool = False) -> dict[str, Any]:
    """Everything the cluster needs besides its nodes: ``rabbitmqctl import_definitions`` takes it whole.

    Users have no password (``password_hash`` empty): the only way in is a certificate from the
    setup's CA, whose common name is the user (``ssl_cert_login_from = common_name``).
    """
    parties, patterns = acl_rights(acl_text(insider=insider))
    users, permissions, topic_permissions = [], [], []

    def add(user: str, configure: str, write: str, read: str, topic_write: str, topic_read: str) -> None:
        users.append({"name": user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                      "tags": []})  # fmt: skip
        permissions.append({"user": user, "vhost": VHOST, "configure": configure, "write": write, "read": read})
        topic_permissions.append({"user": user, "vhost": VHOST, "exchange": EXCHANGE, "write": topic_write,
                                  "read": topic_read})  # fmt: skip

    for user, rights in parties.items():
        if user.startswith("insider"):
            add(user, ".*", ".*", ".*", ".*", ".*")
            continue
        party = user.split("-")[0]
        sessions = f"^{SESSION_QUEUES}(?:{'|'.join(CLIENT_PREFIXES[party])})[^.]*$"
        own = "|".join(re.escape(queue(party)) for queue in (party_queue, ordered_queue))
        queues = f"^(?:{re.escape(EXCHANGE)}|{own}|{sessions[1:-1]})$"
        add(user, sessions, queues, queues,
            _either([_expression(t, None) for t in rights["write"]]),
            _either([_expression(t, None) for t in rights["read"]]))  # fmt: skip
    for machine in machines:
        sessions = f"^{SESSION_QUEUES}{re.escape(machine_client_id(machine))}qos[01]$"
        queues = f"^(?:{re.escape(EXCHANGE)}|{sessions[1:-1]})$"
        add(machine, sessions, queues, queues,
            _either([_expression(t, machine) for t in patterns["write"]]),
            _either([_expression(t, machine) for t in patterns["read"]]))  # fmt: skip
    return {
        "users": users,
        "vhosts": [{"name": VHOST}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "queues": [
            _quorum_queue(queue, {"x-single-active-consumer": True} if ordered else {})
            for queue, ordered in sorted({(queue, ordered) for queue, ordered, _ in ROUTES})
        ]
        + [_session_queue(machine) for machine in machines],
        "bindings": [
            {
                "source": EXCHANGE,
                "vhost": VHOST,
                "destination": queue,
                "destination_type": "queue",
                "routing_key": routing_key(topic),
                "arguments": {},
            }
            for queue, _, topic in ROUTES
        ],
        "policies": [
            # an offline machine's session holds at most what an offline Mosquitto session holds; what is
            # dropped is still in the machines' outboxes, or is an ack the next ack supersedes
            {
                "name": "mqtt-sessions",
                "vhost": VHOST,
                "pattern": f"^{SESSION_QUEUES}",
                "apply-to": "queues",
                "priority": 0,
                "definition": {
                    "max-length": MAX_QUEUED_MESSAGES,
                    "max-length-bytes": MAX_QUEUED_BYTES,
                    "overflow": "drop-head",
                },
            },  # fmt: skip
            # a party's backlog while every instance is down; past it, the oldest reports are dropped and
            # resent from the outboxes (they are acked only once stored)
            {
                "name": "party-queues",
                "vhost": VHOST,
                "pattern": r"^(?:vendor|issuer|school)\.(?:reports|ordered)$",
                "apply-to": "queues",
                "priority": 0,
                "definition": {"max-length-bytes": PARTY_QUEUE_BYTES, "overflow": "drop-head"},
            },  # fmt: skip
        ],
    }


def session_queue_name(machine: str) -> str:
    """The queue the MQTT plugin keeps a machine's persistent session in (its acks and commands wait there)."""
    return f"{SESSION_QUEUES}{machine_client_id(machine)}qos1"


def _session_queue(machine: str) -> dict[str, Any]:
    """A machine's session queue, declared at enrolment exactly as the plugin would declare it on first connect.

    Its Raft group is then elected while the operator watches the whole cluster, not on the machine's
    first connect: RabbitMQ 3.10 can leave a quorum queue declared while a node dies without a leader
    for good (rabbitmq-server#13826), and a machine whose session never gets one never hears an ack.
    """
    return _quorum_queue(session_queue_name(machine), {"x-expires": SESSION_TTL_MS})


def _quorum_queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A durable quorum queue as the definitions file declares it."""
    return {
        "name": name,
        "vhost": VHOST,
        "durable": True,
        "auto_delete": False,
        "arguments": {"x-queue-type": "quorum", **arguments},
    }


# What each party's backend consumes, as MQTT filters: the very lists its MQTT subscription uses, and the
# school's requests to it, so the two paths never disagree; each to the party's queue, or to its ordered
# queue (one reader at a time) for what must be applied in the order sent. (queue, ordered, MQTT filter)
ROUTES: list[tuple[str, bool, str]] = [
    (ordered_queue(backend.stream), True, topic)
    if topic in backend.ordered
    else (party_queue(backend.stream), False, topic)
    for backend in (VendorBackend, IssuerBackend, SchoolBackend)
    for topic in (*backend.subscriptions, *((request_topic(backend.stream),) if backend.stream != "school" else ()))
]
