"""Node changes the pages show live: a node's agent state, and a network's DHCP servers after a duty moved.

Why a module of its own: nodes and DHCP duties are not a tenant's rows, so nothing else tells a tenant's viewers
that the node under their instance went down or that their network's first server moved. Each change goes to
every tenant with something on that node (and, as every event does, to the all-tenants view), after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import events, selectors
from .models import DhcpServer, Instance, Network


def publish_node_states(names: Iterable[str]) -> None:
    """``node.updated`` (name and agent state) to each tenant with a network, DHCP server or instance there."""
    states = selectors.node_states(names)
    if not states:
        return
    tenants: set[tuple[int, str]] = set()
    tenants.update(Network.objects.filter(node__in=states).values_list("tenant_id", "node"))
    tenants.update(DhcpServer.objects.filter(node__in=states).values_list("network__tenant_id", "node"))
    tenants.update(Instance.objects.filter(node__in=states).values_list("network__tenant_id", "node"))
    events.publish_many([(tenant, "node.updated", selectors.node_data(node, states[node]))
                         for tenant, node in sorted(tenants)])


def publish_dhcp_servers(network_ids: Iterable[int]) -> None:
    """``dhcp_servers.updated`` (the whole list) and ``network.updated`` (its node is its first server's) for
    each network whose servers changed; the states of the nodes they are on come with them."""
    ids = sorted(set(network_ids))
    if not ids:
        return
    servers = selectors.dhcp_servers_by_network(ids)
    networks = list(Network.objects.filter(pk__in=ids))
    states = selectors.node_states(row["node"] for rows in servers.values() for row in rows)
    items = []
    for network in networks:
        items.append((network.tenant_id, "network.updated", selectors.network_data(network)))
        items.append((network.tenant_id, "dhcp_servers.updated",
                      selectors.dhcp_servers_data(network.pk, servers[network.pk])))
        items += [(network.tenant_id, "node.updated", selectors.node_data(row["node"], states[row["node"]]))
                  for row in servers[network.pk] if row["node"] in states]
    events.publish_many(items)
