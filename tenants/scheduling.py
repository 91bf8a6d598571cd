"""Which network node realises a new network.

Every node runs one agent (an RQ worker on queue ``agent-<node>``) against the shared database and Redis. A new
network goes to the live agent with the fewest networks; with no live agent it goes to this node, whose agent
will pick the job up (and reconcile) when it starts. Existing networks never move on their own.
"""

from __future__ import annotations

import time

import django_rq
from django.conf import settings
from django.db.models import Count
from redis.exceptions import RedisError
from rq import Worker

from .models import Network
from .queue import node_of_queue

# Listing RQ workers costs a Redis round trip per worker; nodes join and leave rarely, so a creation burst
# reuses the answer for a few seconds.
LIVE_NODES_TTL = 5.0
_cache: tuple[float, list[str]] = (0.0, [])


def live_nodes(*, fresh: bool = False) -> list[str]:
    """Nodes whose agent is registered in Redis right now (RQ expires dead workers' registrations)."""
    global _cache
    checked_at, nodes = _cache
    if not fresh and time.monotonic() - checked_at < LIVE_NODES_TTL:
        return nodes
    try:
        workers = Worker.all(connection=django_rq.get_connection(settings.NETDASH_AGENT_QUEUE))
    except RedisError:
        return []
    nodes = sorted({node for w in workers for q in w.queue_names() if (node := node_of_queue(q))})
    _cache = (time.monotonic(), nodes)
    return nodes


def schedule_node() -> str:
    """The least-loaded live node (ties: this node first, then by name)."""
    nodes = live_nodes() or [settings.NETDASH_NODE]
    load = dict(Network.objects.filter(node__in=nodes).values("node").annotate(n=Count("id")).values_list("node", "n"))
    return min(nodes, key=lambda node: (load.get(node, 0), node != settings.NETDASH_NODE, node))
