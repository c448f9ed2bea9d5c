"""RabbitMQ 3.10's MQTT client-id registry (``mqtt_node``): a Raft cluster across the nodes, checked and mended.

Every MQTT connection registers its client id there; while the registry has no leader every node
refuses MQTT sessions ("client ID registration timed out"). Two ways it fails on a loaded box, both
seen in this suite: nodes booting together each ask to join it, a leader that has not yet committed
an entry in its term refuses the change ("cluster_change_not_permitted") and the plugin does not ask
again, so the registry lacks a node, which refuses every MQTT session once the registry's leader
changes (after a node is killed, say); and a revived node's election stalls. The remedies are the
plugin's own, run as an operator would with ``rabbitmqctl eval``: add the missing members, start a
node's registry server again where it has stopped (a node removed from the registry stops its own)
or where it no longer answers (a removed node's server can stay up, deaf, after the others add it
back: seen in 2 of 5 full-suite runs in one day), call an election. A server still deaf the round
after its restart is replaced, as an operator replaces a Raft member: its data deleted, a healthy
node removes it from the registry, a fresh server starts and the healthy node adds it back, which
makes the leader send it the log at once (only while every other node's view is whole: a majority
holds the log). Restarted on its own log it stayed deaf for two minutes in 3 full-suite runs; a
server suspended (``sys:suspend``) is deaf the same way, and this replacement mends it in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

Evaluate = Callable[[str], str]  # an Erlang expression run on one node; what it printed

_MEMBERS = "ra:members(mqtt_node:server_id(), 5000)"
WHOLE = (f"case {_MEMBERS} of {{ok, M, _}} -> "
         "lists:all(fun(N) -> lists:member({mqtt_node, N}, M) end, rabbit_nodes:all()); _ -> false end.")  # fmt: skip
MEND = (f"case {_MEMBERS} of {{ok, M, _}} -> "
        "[ra:add_member(mqtt_node:server_id(), Id) || Id <- mqtt_node:all_node_ids() -- M]; "
        "{error, noproc} -> ra:restart_server(coordination, mqtt_node:server_id()); "
        "{timeout, _} -> ra:stop_server(coordination, mqtt_node:server_id()), "
        "ra:restart_server(coordination, mqtt_node:server_id()), deaf; "
        "Other -> Other end.")  # fmt: skip
ELECT = "mqtt_node:trigger_election()."
DELETE = "ra:force_delete_server(coordination, mqtt_node:server_id())."
FRESH = ("Self = mqtt_node:server_id(), Fresh = ra:new_uid(<<\"mqtt_node\">>), "
         "ra:start_server(coordination, #{cluster_name => mqtt_node, id => Self, uid => Fresh, "
         "friendly_name => mqtt_node, initial_members => mqtt_node:all_node_ids() -- [Self], "
         "log_init_args => #{uid => Fresh}, machine => {module, mqtt_machine, #{}}}).")  # fmt: skip
REPLACED_GRACE_S = 20.0  # a replaced server catching up is not replaced again at once


def _member(change: str, node: str) -> str:
    return f"ra:{change}_member(mqtt_node:server_id(), {{mqtt_node, '{node}'}})."


def replace(nodes: Mapping[str, Evaluate], deaf: str) -> None:
    """A fresh registry server on ``deaf``, which a healthy node removes and adds back (see the module's note)."""
    healthy = next(evaluate for name, evaluate in nodes.items() if name != deaf)
    nodes[deaf](DELETE)
    healthy(_member("remove", deaf))
    nodes[deaf](FRESH)
    healthy(_member("add", deaf))


def whole(evaluate: Evaluate) -> bool:
    """Whether this node's view of the registry has every cluster node (down ones too) as a member."""
    return evaluate(WHOLE).strip() == "true"


def elect(nodes: Mapping[str, Evaluate]) -> None:
    for evaluate in nodes.values():
        evaluate(ELECT)


def views(nodes: Mapping[str, Evaluate]) -> str:
    """Each node's members and leader, for an error message."""
    return "; ".join(f"{name}: {' '.join(evaluate(_MEMBERS + '.').split())[:300]}" for name, evaluate in nodes.items())


def await_whole(nodes: Mapping[str, Evaluate], deadline: float) -> None:
    """Until every node's view is whole, add the members its view lacks; ``TimeoutError`` past ``deadline``.

    A node alone in not being whole whose server was deaf the round before too (its restart did not
    mend it) is replaced (``replace``), not again within ``REPLACED_GRACE_S``.
    """
    deaf_before: set[str] = set()
    replaced: dict[str, float] = {}
    while True:
        answers = {name: evaluate(WHOLE).strip() for name, evaluate in nodes.items()}
        partial = [name for name, answer in answers.items() if answer != "true"]
        if not partial:
            return
        if time.monotonic() > deadline:
            said = "; ".join(f"{name} said {answers[name][:200]!r}" for name in partial)
            raise TimeoutError(f"the MQTT client-id registry did not take every node ({said}): {views(nodes)}")
        deaf_now = set()
        for name in partial:
            if nodes[name](MEND).strip() == "deaf":  # a deaf server is restarted on its own log first
                deaf_now.add(name)
        for name in deaf_now & deaf_before:
            if len(partial) == 1 and time.monotonic() - replaced.get(name, -REPLACED_GRACE_S) >= REPLACED_GRACE_S:
                replace(nodes, name)
                replaced[name] = time.monotonic()
        deaf_before = deaf_now
        time.sleep(1.0)
