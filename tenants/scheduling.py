"""Which nodes get new work: a network's DHCP servers, an instance, a router.

Every node runs one agent (an RQ worker on queue ``agent-<node>``) against the shared database and Redis, and
keeps its :class:`~tenants.models.Node` row's heartbeat fresh. Work goes to live nodes of the right role, least
loaded first; with no live node it goes to this node, whose agent will pick the job up (and reconcile) when it
starts. Existing duties never move on their own here (node loss and drain move them explicitly).

A network's DHCP servers go to ``NETDASH_DHCP_SERVERS_PER_NETWORK`` distinct dhcp nodes (Neutron's
``dhcp_agents_per_network``); with fewer live dhcp nodes, as many as there are. Its first server's node is
``Network.node``, the queue its jobs go to. Standbys need the overlay: a network can span only nodes with a VTEP
address, so a first server on a node without one has no standby (and nodes without one never get a standby).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q

from .models import DhcpServer, Instance, Network
from .nodes import live_nodes


def _least_loaded(nodes: list[str], load: dict[str, tuple[int, ...]]) -> list[str]:
    """``nodes`` by load (ties: this node first, then by name); no live node: this node alone."""
    nodes = nodes or [settings.NETDASH_NODE]
    return sorted(nodes, key=lambda node: (load.get(node, ()), node != settings.NETDASH_NODE, node))


def schedule_node() -> str:
    """The live node with the fewest networks (routers: one namespace on one node)."""
    nodes = list(live_nodes().values_list("name", flat=True))
    load = {node: (n,) for node, n in
            Network.objects.filter(node__in=nodes).values("node").annotate(n=Count("id")).values_list("node", "n")}
    return _least_loaded(nodes, load)[0]


def schedule_dhcp_nodes(count: int | None = None, *, exclude: frozenset[str] = frozenset(),
                        overlay_only: bool = False) -> list[str]:
    """Up to ``count`` (default ``NETDASH_DHCP_SERVERS_PER_NETWORK``) distinct live dhcp nodes for a network's
    servers, least loaded first: fewest DHCP servers, then fewest first servers (so ``Network.node``, the
    queue, spreads too); every one after the first has a VTEP, and so has the first if there are several.
    ``exclude``: nodes that already serve the network; ``overlay_only``: VTEP nodes only (a moving standby)."""
    count = settings.NETDASH_DHCP_SERVERS_PER_NETWORK if count is None else count
    rows = live_nodes().filter(dhcp=True).exclude(name__in=exclude)
    if overlay_only:
        rows = rows.exclude(vtep_address=None)
    vtep = dict(rows.values_list("name", "vtep_address"))
    if not vtep and (exclude or overlay_only):
        return []
    load = {row["node"]: (row["servers"], row["first"]) for row in
            DhcpServer.objects.filter(node__in=list(vtep)).values("node")
            .annotate(servers=Count("id"), first=Count("id", filter=Q(rank=0)))}
    ordered = _least_loaded(list(vtep), load)
    if vtep.get(ordered[0]) is None:
        return ordered[:1]
    return [n for n in ordered if vtep.get(n) is not None][:count]


def schedule_compute_node() -> str:
    """The live compute node with the fewest instances, for a new instance."""
    nodes = list(live_nodes().filter(compute=True).values_list("name", flat=True))
    load = {node: (n,) for node, n in
            Instance.objects.filter(node__in=nodes).values("node").annotate(n=Count("id")).values_list("node", "n")}
    return _least_loaded(nodes, load)[0]


def network_nodes(network: Network) -> set[str]:
    """Every node the network is present on: those running one of its DHCP servers or hosting an instance."""
    servers = DhcpServer.objects.filter(network=network).values_list("node", flat=True)
    instances = Instance.objects.filter(network=network).exclude(node="").values_list("node", flat=True)
    return {*servers, *instances} or {network.node}
