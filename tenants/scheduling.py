"""Which nodes get new work: a network's DHCP servers, an instance, a router.

Every node runs one agent (an RQ worker on queue ``agent-<node>``) against the shared database and Redis, and
keeps its :class:`~tenants.models.Node` row's heartbeat fresh. Work goes to live nodes of the right role, least
loaded first; with no live node it goes to this node, whose agent will pick the job up (and reconcile) when it
starts. Existing duties never move on their own here (node loss and drain move them explicitly).

A network's DHCP servers go to ``NETDASH_DHCP_SERVERS_PER_NETWORK`` distinct dhcp nodes (Neutron's
``dhcp_agents_per_network``); with fewer live dhcp nodes, as many as there are. Its first server's node is
``Network.node``, the queue its jobs go to. Standbys need the overlay: a network can span only nodes with a VTEP
address, so a first server on a node without one has no standby (and nodes without one never get a standby).

Where a network is present (issue 13): on the nodes of its DHCP servers, of its instances and of the routers with
a port or gateway on it; each of those agents realises only its node's share (segment + VXLAN port, its own
dnsmasq, its own instances) and its jobs go to all of them (:func:`enqueue_on_network_nodes`). Without the overlay
(the network's first server has no VTEP) a new instance goes to ``Network.node``, so a one-node install, or
several nodes without VTEPs, realise each network whole on one node, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db.models import Count, Q

from .models import DhcpServer, Instance, Network, Node, Router
from .nodes import live_nodes
from .queue import enqueue_on_commit


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


def schedule_instance_node(network: Network) -> str:
    """The node for a new instance of ``network``: the live compute node with a VTEP with the fewest instances
    when the network's first server has a VTEP (the overlay carries it to its DHCP servers), else the network's
    own node (no overlay: the instance must share the segment with its dnsmasq)."""
    if not Node.objects.filter(name=network.node).exclude(vtep_address=None).exists():
        return network.node
    nodes = list(live_nodes().filter(compute=True).exclude(vtep_address=None).values_list("name", flat=True))
    if not nodes:
        return network.node
    load = {node: (n,) for node, n in
            Instance.objects.filter(node__in=nodes).values("node").annotate(n=Count("id")).values_list("node", "n")}
    return _least_loaded(nodes, load)[0]


def network_nodes(network: Network) -> set[str]:
    """Every node the network is present on: its own node (the first server's), those running one of its DHCP
    servers, hosting one of its instances, or a router with a port or gateway on it."""
    return networks_nodes([network])[network.pk]


def networks_nodes(networks: Sequence[Network]) -> dict[int, set[str]]:
    """:func:`network_nodes` of many networks in three queries whatever their number (bulk writes enqueue on
    each network's nodes: three queries per network made a bulk delete of 500 cost 1,500)."""
    ids = [n.pk for n in networks]
    nodes = {n.pk: {n.node} for n in networks}
    for pk, node in DhcpServer.objects.filter(network__in=ids).values_list("network_id", "node"):
        nodes[pk].add(node)
    for pk, node in Instance.objects.filter(network__in=ids).exclude(node="").values_list("network_id", "node"):
        nodes[pk].add(node)
    for port, gateway, node in (Router.objects.filter(Q(interfaces__subnet__network__in=ids)
                                                      | Q(external_network__in=ids)).exclude(node="")
                                .values_list("interfaces__subnet__network_id", "external_network_id", "node")):
        for pk in {port, gateway} & nodes.keys():
            nodes[pk].add(node)
    return nodes


def networks_on(node: str):
    """The networks present on ``node`` (the reverse of :func:`network_nodes`): what its reconcile converges."""
    return Network.objects.filter(
        Q(node=node) | Q(dhcp_servers__node=node) | Q(instances__node=node)
        | Q(subnets__router_interface__router__node=node) | Q(gateway_routers__node=node)).distinct()


def networks_served_by(node: str):
    """The networks whose dnsmasq runs on ``node``: one of their DHCP servers is there and not failed on purpose
    (a network without server rows, from before they existed, is served by its own node)."""
    return Network.objects.filter(Q(dhcp_servers__node=node, dhcp_servers__failed_at=None)
                                  | Q(dhcp_servers=None, node=node)).distinct()


def serves_dhcp(network: Network, node: str) -> bool:
    """Whether ``node`` runs a dnsmasq of ``network`` (reads ``dhcp_servers``, prefetched by the batch loads).

    A server failed on purpose (``DhcpServer.failed_at``, the failover lab) is held by its node but runs no
    dnsmasq: the database says it is down, so the monitor and reconcile leave it down (the network's segment
    and tunnel stay: its other servers answer across them)."""
    servers = list(network.dhcp_servers.all())
    if not servers:
        return node == network.node
    return any(s.node == node and s.failed_at is None for s in servers)


def instance_node(instance: Instance) -> str:
    """The node hosting the instance (a row from before ``Instance.node`` existed: its network's node)."""
    return instance.node or instance.network.node


def instances_on(node: str):
    """The instances hosted on ``node``."""
    return Instance.objects.filter(Q(node=node) | Q(node="", network__node=node))


def enqueue_on_network_nodes(func: str, network: Network, *args: object, also: frozenset[str] = frozenset()) -> None:
    """After commit, ``func(network.pk, *args)`` on every node the network is present on (and on ``also``: a
    node it is leaving, which must drop its share)."""
    for node in sorted(network_nodes(network) | also):
        enqueue_on_commit(func, network.pk, *args, node=node)
