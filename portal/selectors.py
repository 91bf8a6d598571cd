"""Reads that only the pages need (event history, audit, leases of one instance).

They take objects the caller already obtained through ``tenants.selectors.*_for_user``, so isolation is decided
there; these functions only narrow further.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, Exists, OuterRef, Q, QuerySet, When
from django.http import Http404
from django.utils import timezone

from tenants import selectors
from tenants.choices import LeaseState, ObjectStatus, Role
from tenants.models import (
    AuditEntry,
    DhcpServer,
    FloatingIP,
    Instance,
    Lease,
    LeaseEvent,
    Membership,
    Network,
    Node,
    Router,
    RouterInterface,
    Tenant,
)
from tenants.nodes import agent_state


@dataclass(frozen=True)
class Event:
    """One row of a network's "recent events": an audit entry or a lease event, merged by time."""

    at: datetime
    kind: str  # "audit" or "lease"
    action: str
    detail: str
    actor: str = ""


def network_events(network: Network, limit: int = 30) -> list[Event]:
    """Newest first: who changed the network, its subnets and instances, and what happened to its leases."""
    subnet_ids = [str(pk) for pk in network.subnets.values_list("pk", flat=True)]
    instance_ids = [str(pk) for pk in network.instances.values_list("pk", flat=True)]
    audit = (
        AuditEntry.objects.filter(tenant=network.tenant_id)
        .filter(
            Q(object_type="network", object_id=str(network.pk))
            | Q(object_type="subnet", object_id__in=subnet_ids)
            | Q(object_type="instance", object_id__in=instance_ids)
        )
        .select_related("actor")
        .order_by("-at", "-id")[:limit]
    )
    leases = LeaseEvent.objects.filter(subnet__network=network).order_by("-at", "-id")[:limit]
    events = [
        Event(at=a.at, kind="audit", action=a.action, detail=a.detail, actor=a.actor.get_username() if a.actor else "")
        for a in audit
    ] + [
        Event(at=e.at, kind="lease", action=f"lease.{e.kind}",
              detail=f"{e.ip_address} {e.mac_address} {e.hostname}".strip())
        for e in leases
    ]
    events.sort(key=lambda e: e.at, reverse=True)
    return events[:limit]


def network_instances(network: Network) -> QuerySet[Instance]:
    """The network's instances by hostname, each with ``leased``: it holds an active lease in its subnet.

    Matched by instance or by MAC, like ``instance_lease``: the watcher may record the lease before linking it.
    """
    active = Lease.objects.filter(subnet=OuterRef("subnet"), state=LeaseState.ACTIVE).filter(
        Q(instance=OuterRef("pk")) | Q(mac_address=OuterRef("mac_address")))
    return network.instances.select_related("subnet").annotate(leased=Exists(active)).order_by("hostname")


def network_leases(network: Network, limit: int = 100) -> QuerySet[Lease]:
    """Active leases first, then the most recent released/expired ones."""
    return (
        Lease.objects.filter(subnet__network=network)
        .select_related("subnet", "instance")
        .order_by(Case(When(state=LeaseState.ACTIVE, then=0), default=1), "-updated_at")[:limit]
    )


def instance_lease(instance: Instance) -> Lease | None:
    """The instance's current lease: linked by instance or, before the watcher links it, by MAC in its subnet."""
    return (
        Lease.objects.filter(subnet=instance.subnet_id, state=LeaseState.ACTIVE)
        .filter(Q(instance=instance) | Q(mac_address=instance.mac_address))
        .order_by("-updated_at")
        .first()
    )


def administered_tenant(user: AbstractBaseUser, slug: str) -> Tenant:
    """The tenant ``slug`` if ``user`` administers it; 404 otherwise, so non-members learn nothing.

    A plain member of the tenant also gets 404: the members and audit pages are not theirs to see.
    """
    tenant = selectors.tenants_for_user(user).filter(slug=slug).first()
    if tenant is None or not selectors.is_tenant_admin(user, tenant):
        raise Http404("No such tenant.")
    return tenant


def tenant_memberships(tenant: Tenant) -> QuerySet[Membership]:
    return tenant.memberships.select_related("user").order_by("user__username")


def tenant_audit(tenant: Tenant) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(tenant=tenant).select_related("actor").order_by("-at", "-id")


def administered_tenants(user: AbstractBaseUser) -> QuerySet[Tenant]:
    """Tenants whose members and audit log ``user`` may see (superusers: all)."""
    tenants = selectors.tenants_for_user(user)
    if user.is_superuser:
        return tenants
    return tenants.filter(memberships__user=user, memberships__role=Role.ADMIN).distinct()


def network_router_interfaces(network: Network) -> QuerySet[RouterInterface]:
    """The routers in front of the network's subnets, with their external side, for the network page."""
    return RouterInterface.objects.filter(subnet__network=network).select_related(
        "router__external_network", "subnet").order_by("subnet__cidr")


def instance_router(instance: Instance) -> Router | None:
    """The router that is the instance's gateway (the one attached to its subnet), if any."""
    interface = RouterInterface.objects.filter(subnet_id=instance.subnet_id).select_related(
        "router__external_network").first()
    return interface.router if interface else None


def instance_floating_ip(instance: Instance) -> FloatingIP | None:
    return FloatingIP.objects.filter(instance=instance).first()


# --- nodes (superusers) --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeRow:
    """One node on the nodes page: its row, what its agent is doing, and what the database puts on it."""

    node: Node
    state: str  # AgentState
    heartbeat_age: float  # seconds
    networks: int  # whose queue (first DHCP server) it is
    dhcp_duties: int
    instances: int
    routers: int
    failed: int  # of those, objects in error

    @property
    def namespaces(self) -> int:
        """Its load: the namespaces (DHCP servers, instances, routers) its agent keeps on its kernel."""
        return self.dhcp_duties + self.instances + self.routers


def _per_node(qs: QuerySet, failed: Q) -> dict[str, tuple[int, int]]:
    """``{node: (rows, rows in error)}`` in one grouped query."""
    rows = qs.values("node").annotate(n=Count("id"), failed=Count("id", filter=failed))
    return {row["node"]: (row["n"], row["failed"]) for row in rows}


def node_rows(nodes: QuerySet[Node]) -> list[NodeRow]:
    """Every node with its counts, in five queries however many nodes there are."""
    error = ObjectStatus.ERROR
    networks = _per_node(Network.objects.all(), Q(status=error))
    duties = _per_node(DhcpServer.objects.all(), Q(network__status=error))
    instances = _per_node(Instance.objects.all(), Q(status=error))
    routers_ = _per_node(Router.objects.all(), Q(status=error))
    now = timezone.now()
    rows = []
    for node in nodes.order_by("name"):
        counts = [table.get(node.name, (0, 0)) for table in (networks, duties, instances, routers_)]
        rows.append(NodeRow(
            node=node, state=str(agent_state(node.state, node.heartbeat_at)),
            heartbeat_age=(now - node.heartbeat_at).total_seconds(),
            networks=counts[0][0], dhcp_duties=counts[1][0], instances=counts[2][0], routers=counts[3][0],
            failed=counts[1][1] + counts[2][1] + counts[3][1]))
    return rows


def node_duties(node: Node) -> QuerySet[DhcpServer]:
    """The node's DHCP servers with their network (status and reason: a failed realise shows next to it)."""
    return DhcpServer.objects.filter(node=node.name).select_related("network__tenant").order_by(
        "network__tenant__name", "network__name")


def node_instances(node: Node) -> QuerySet[Instance]:
    return Instance.objects.filter(node=node.name).select_related("network__tenant").order_by(
        "network__tenant__name", "hostname")


def node_routers(node: Node) -> QuerySet[Router]:
    return Router.objects.filter(node=node.name).select_related("tenant").order_by("tenant__name", "name")
