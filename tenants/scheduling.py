"""Which network node realises a new network.

Every node runs one agent (an RQ worker on queue ``agent-<node>``) against the shared database and Redis, and
keeps its :class:`~tenants.models.Node` row's heartbeat fresh. A new network goes to the live node with the
fewest networks; with no live node it goes to this node, whose agent will pick the job up (and reconcile) when
it starts. Existing networks never move on their own.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count

from .models import Network
from .nodes import live_nodes


def schedule_node() -> str:
    """The least-loaded live node (ties: this node first, then by name)."""
    nodes = list(live_nodes().values_list("name", flat=True)) or [settings.NETDASH_NODE]
    load = dict(Network.objects.filter(node__in=nodes).values("node").annotate(n=Count("id")).values_list("node", "n"))
    return min(nodes, key=lambda node: (load.get(node, 0), node != settings.NETDASH_NODE, node))
