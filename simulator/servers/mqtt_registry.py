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
back: seen in 2 of 5 full-suite runs in one day) and has not just been restarted (restarting it at
every check kept it from catching up: seen once more), call an election.
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
        "Other -> Other end.")  # fmt: skip
RESTART = ("ra:stop_server(coordination, mqtt_node:server_id()), "
           "ra:restart_server(coordination, mqtt_node:server_id()).")  # fmt: skip
ELECT = "mqtt_node:trigger_election()."
RESTART_GRACE_S = 20.0  # a restarted server's first answers time out while it catches up: not restarted again


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

    A node whose registry server does not answer is restarted, but not again within ``RESTART_GRACE_S``:
    restarting it at every check kept a slow node from ever catching up (a full suite on 2 cores).
    """
    restarted: dict[str, float] = {}
    while True:
        answers = {name: evaluate(WHOLE).strip() for name, evaluate in nodes.items()}
        partial = [name for name, answer in answers.items() if answer != "true"]
        if not partial:
            return
        if time.monotonic() > deadline:
            said = "; ".join(f"{name} said {answers[name][:200]!r}" for name in partial)
            raise TimeoutError(f"the MQTT client-id registry did not take every node ({said}): {views(nodes)}")
        for name in partial:
            answer = nodes[name](MEND)
            if "timeout" in answer and time.monotonic() - restarted.get(name, -RESTART_GRACE_S) >= RESTART_GRACE_S:
                nodes[name](RESTART)
                restarted[name] = time.monotonic()
        time.sleep(1.0)
