"""Node loss and drain: a node's DHCP duties move to live nodes (Neutron's automatic DHCP failover).

Why only DHCP duties move: a server is state in the database (its rank and addresses stay with the duty, so
clients' server identifier stays valid and the survivor's pre-seeded lease file already knows them), while an
instance is a client whose namespace lives on its node's kernel: it cannot be moved, it is shown as on a down
node. Moving a duty is a row update plus a realise job, enqueued after commit, on every node the network is present on
(the new server's node starts its dnsmasq, the others update their flood lists and the announced DNS servers) and
on the node it left (a drained node drops its dnsmasq now; a down one when its agent returns and reconciles).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import events, network_rows, selectors
from .choices import NodeState, ObjectStatus
from .models import DhcpServer, Instance, Network, Node
from .node_events import publish_dhcp_servers, publish_node_states
from .scheduling import enqueue_on_network_nodes, schedule_dhcp_nodes


def dhcp_duties_move_off(node: str) -> int:
    """Move every DHCP server of ``node`` to the least-loaded live dhcp node not already serving that network;
    a server with nowhere to go stays (the network runs on its other servers); return how many moved."""
    moved: list[int] = []
    with transaction.atomic():
        for server in DhcpServer.objects.select_for_update().filter(node=node).order_by("network_id", "rank"):
            serving = frozenset(DhcpServer.objects.filter(network_id=server.network_id).values_list("node", flat=True))
            target = next(iter(schedule_dhcp_nodes(1, exclude=serving | {node}, overlay_only=len(serving) > 1)),
                          None)
            if target is None:
                continue
            server.node = target
            server.failed_at = None  # a lab's "failed" was of the old node's dnsmasq: the moved duty starts fresh
            server.save(update_fields=["node", "failed_at"])
            if server.rank == 0:  # the first server's node is the network's queue
                Network.objects.filter(pk=server.network_id).update(node=target)
            enqueue_on_network_nodes("tenants.jobs.realise_network", Network.objects.get(pk=server.network_id),
                                     also=frozenset({node}))
            moved.append(server.network_id)
        publish_dhcp_servers(moved)
    return len(moved)


def nodes_fail_over() -> list[str]:
    """Mark ``down`` every up node whose heartbeat is older than ``NETDASH_NODE_DEAD_SECONDS`` and move the DHCP
    duties of every down node that still has some; return the nodes marked down now. Idempotent: every agent
    may call it on its heartbeat."""
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS)
    with transaction.atomic():
        dead = list(Node.objects.select_for_update().filter(state=NodeState.UP, heartbeat_at__lt=stale)
                    .values_list("name", flat=True))
        Node.objects.filter(name__in=dead).update(state=NodeState.DOWN)
        publish_node_states(dead)
    down = list(Node.objects.filter(state=NodeState.DOWN).values_list("name", flat=True))
    for node in DhcpServer.objects.filter(node__in=down).values_list("node", flat=True).distinct():
        dhcp_duties_move_off(node)
    down_shares_forget(down)
    return dead


def down_shares_forget(down: list[str]) -> int:
    """Delete what is being deleted on ``down`` nodes without them: their ``deleting`` instances, and their
    instances and DHCP servers of ``deleting`` networks; then the rows of networks no node holds any more.
    Return how many instance rows went.

    Why: a down node's agent runs no job, so a network with an instance there stayed ``deleting`` for good. What
    the node still holds on its host (namespaces, processes, files) its agent's reconcile removes when it comes
    back, since no row names it any more. A node that is merely slow (heartbeat fresh) is not down: its share
    still waits for its own job.
    """
    if not down:
        return 0
    doomed = Q(status=ObjectStatus.DELETING) | Q(network__status=ObjectStatus.DELETING)
    with transaction.atomic():
        instances = list(Instance.objects.select_for_update().filter(doomed, node__in=down).select_related("network"))
        servers = DhcpServer.objects.filter(node__in=down, network__status=ObjectStatus.DELETING)
        touched = {i.network_id for i in instances} | set(servers.values_list("network_id", flat=True))
        if not touched:
            return 0
        out = [(i.network.tenant_id, "instance.deleted", selectors.instance_data(i)) for i in instances]
        Instance.objects.filter(pk__in=[i.pk for i in instances]).delete()
        servers.delete()
        events.publish_many(out)
        network_rows.delete_unshared(Network.objects.filter(pk__in=touched, status=ObjectStatus.DELETING))
        for network in Network.objects.filter(pk__in=touched).exclude(status=ObjectStatus.DELETING):
            # Its DHCP servers drop the gone instances' reservations and leases (on the nodes that are up).
            enqueue_on_network_nodes("tenants.jobs.realise_network", network)
    return len(instances)


def node_drain(name: str) -> int:
    """Before maintenance: the node takes no new work and its DHCP duties move off; return how many moved."""
    Node.objects.filter(name=name).update(state=NodeState.DRAINED)
    publish_node_states([name])
    return dhcp_duties_move_off(name)


def node_undrain(name: str) -> None:
    """The node takes new work again (duties that moved away stay where they are)."""
    if Node.objects.filter(name=name, state=NodeState.DRAINED).update(state=NodeState.UP):
        publish_node_states([name])
