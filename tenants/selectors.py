"""Reads: what a user may see, and plain-dict views of objects for events, snapshots and the API.

Tenant isolation starts here: every interface obtains its querysets from ``*_for_user`` functions, so a row of
another tenant is simply not in the queryset (404, never 403 and never data).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Model, Q, QuerySet

from .choices import LeaseState, Role
from .models import (
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
    Subnet,
    Tenant,
)
from .nodes import agent_state, live_nodes


def tenants_for_user(user: AbstractBaseUser) -> QuerySet[Tenant]:
    """Tenants the user belongs to (superusers: all)."""
    if not user.is_authenticated:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user).distinct()


def is_tenant_admin(user: AbstractBaseUser, tenant: Tenant) -> bool:
    """Tenant admins manage members of their own tenant; superusers manage every tenant."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or Membership.objects.filter(user=user, tenant=tenant, role=Role.ADMIN).exists()


def networks_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[Network]:
    qs = Network.objects.filter(tenant__in=tenants_for_user(user)).select_related("tenant")
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    return qs


def subnets_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[Subnet]:
    qs = Subnet.objects.filter(network__in=networks_for_user(user, tenant)).select_related("network__tenant")
    return qs.prefetch_related("allocation_pools")


def instances_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[Instance]:
    return Instance.objects.filter(network__in=networks_for_user(user, tenant)).select_related(
        "network__tenant", "subnet"
    )


def leases_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[Lease]:
    return Lease.objects.filter(subnet__in=subnets_for_user(user, tenant)).select_related(
        "subnet__network", "instance"
    )


def routers_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[Router]:
    qs = Router.objects.filter(tenant__in=tenants_for_user(user)).select_related("tenant", "external_network")
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    return qs.prefetch_related("interfaces__subnet")


def router_interfaces_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[RouterInterface]:
    return RouterInterface.objects.filter(router__in=routers_for_user(user, tenant)).select_related("router", "subnet")


def floating_ips_for_user(user: AbstractBaseUser, tenant: Tenant | None = None) -> QuerySet[FloatingIP]:
    qs = FloatingIP.objects.filter(tenant__in=tenants_for_user(user)).select_related(
        "network", "instance__subnet__router_interface__router")
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    return qs


def external_networks_for_user(user: AbstractBaseUser) -> QuerySet[Network]:
    """External networks: every signed-in user may see them (read-only) and use them for gateways and floating IPs,
    whichever tenant an administrator created them in."""
    if not user.is_authenticated:
        return Network.objects.none()
    return Network.objects.filter(external=True).exclude(status="deleting").prefetch_related("subnets")


def nodes_for_user(user: AbstractBaseUser) -> QuerySet[Node]:
    """Node internals (VTEP, roles, heartbeat) are for superusers only; tenants see a network's node by name."""
    if not user.is_authenticated or not user.is_superuser:
        return Node.objects.none()
    return Node.objects.all()


def networks_with_counts(qs: QuerySet[Network]) -> QuerySet[Network]:
    """Annotate instance and active-lease counts for list pages and admin."""
    return qs.annotate(
        instance_count=Count("instances", distinct=True),
        lease_count=Count("subnets__leases", filter=Q(subnets__leases__state=LeaseState.ACTIVE), distinct=True),
    ).prefetch_related("subnets")


def quota_usage(tenant: Tenant) -> dict[str, dict[str, int]]:
    """Used/limit per quota kind, for the tenant's quota panel."""
    return {
        "networks": {"used": Network.objects.filter(tenant=tenant).count(), "limit": tenant.quota_networks},
        "subnets": {"used": Subnet.objects.filter(network__tenant=tenant).count(), "limit": tenant.quota_subnets},
        "instances": {"used": Instance.objects.filter(network__tenant=tenant).count(),
                      "limit": tenant.quota_instances},
        "routers": {"used": Router.objects.filter(tenant=tenant).count(), "limit": tenant.quota_routers},
        "floating_ips": {"used": FloatingIP.objects.filter(tenant=tenant).count(), "limit": tenant.quota_floating_ips},
    }


# --- plain-dict views (events, snapshots) ----------------------------------------------------------------

def _plain(kind: str, obj: Model, *fields: str, **extra: Any) -> dict[str, Any]:
    """``{"kind": kind, "id": pk, field: value, …, **extra}``; a foreign key is given as the id it holds."""
    data: dict[str, Any] = {"kind": kind, "id": obj.pk}
    for name in fields:
        data[name] = getattr(obj, obj._meta.get_field(name).attname)
    data.update(extra)
    return data


def dhcp_servers_by_network(networks: QuerySet[Network] | Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """The DHCP servers of many networks (a queryset or ids) in three queries, first (rank 0) first: node, rank
    and the server's address in each DHCP subnet (rank 0 answers from the subnets' ``dhcp_address``, standbys
    from their own). Events, snapshots and pages share this shape."""
    dhcp_subnets: dict[int, list[Subnet]] = defaultdict(list)
    for subnet in Subnet.objects.filter(network__in=networks, enable_dhcp=True).order_by("pk"):
        dhcp_subnets[subnet.network_id].append(subnet)
    rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for server in (DhcpServer.objects.filter(network__in=networks).prefetch_related("addresses")
                   .order_by("network_id", "rank")):
        own = {a.subnet_id: a.address for a in server.addresses.all()}
        rows[server.network_id].append({
            "node": server.node, "rank": server.rank,
            "addresses": {s.cidr: s.dhcp_address if server.rank == 0 else own.get(s.pk)
                          for s in dhcp_subnets[server.network_id]}})
    return rows


def dhcp_servers(network: Network) -> list[dict[str, Any]]:
    """One network's :func:`dhcp_servers_by_network` rows, each with whether its node is live (up and fresh).
    A network page says "no standby" when this has fewer entries than ``NETDASH_DHCP_SERVERS_PER_NETWORK``."""
    live = set(live_nodes().values_list("name", flat=True))
    return [row | {"node_live": row["node"] in live} for row in dhcp_servers_by_network([network.pk])[network.pk]]


def node_states(names: Iterable[str]) -> dict[str, str]:
    """Each named node's :class:`~tenants.choices.AgentState` (live, draining, down) in one query; a name with no
    row (no agent ever registered it) is left out. Tenants may see this much of a node, never its internals."""
    rows = Node.objects.filter(name__in=set(names)).values_list("name", "state", "heartbeat_at")
    return {name: str(agent_state(state, heartbeat_at)) for name, state, heartbeat_at in rows}


def dhcp_servers_data(network_id: int, servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``dhcp_servers.updated`` event's data: a network's whole list of servers (a move changes two rows)."""
    return {"kind": "dhcp_servers", "network": network_id, "servers": servers}


def node_data(name: str, state: str) -> dict[str, Any]:
    return {"kind": "node", "name": name, "state": state}


def network_data(network: Network) -> dict[str, Any]:
    return _plain("network", network, "tenant", "name", "kernel_id", "node", "vni", "status", "status_reason")


def subnet_data(subnet: Subnet) -> dict[str, Any]:
    return _plain("subnet", subnet, "network", "name", "cidr", "gateway", "dhcp_address", "domain_name",
                  "lease_seconds", "enable_dhcp", pools=[[str(s), str(e)] for s, e in subnet.pools],
                  dns_nameservers=list(subnet.dns_nameservers or []))


def instance_data(instance: Instance) -> dict[str, Any]:
    return _plain("instance", instance, "network", "subnet", "hostname", "kernel_id", "node", "mac_address",
                  "ip_address", "fixed_ip", "status", "status_reason")


def lease_data(lease: Lease) -> dict[str, Any]:
    return _plain("lease", lease, "subnet", "instance", "ip_address", "mac_address", "hostname", "state",
                  network=lease.subnet.network_id,
                  expires_at=lease.expires_at.isoformat() if lease.expires_at else None)


def lease_event_data(event: LeaseEvent) -> dict[str, Any]:
    return _plain("lease_event", event, "subnet", "ip_address", "mac_address", "hostname", event=event.kind,
                  at=event.at.isoformat() if event.at else None)


def router_data(router: Router) -> dict[str, Any]:
    return _plain("router", router, "tenant", "name", "kernel_id", "node", "status", "status_reason",
                  "external_network", "external_ip",
                  subnets=sorted(i.subnet_id for i in router.interfaces.all()) if router.pk else [])


def floating_ip_data(fip: FloatingIP) -> dict[str, Any]:
    return _plain("floating_ip", fip, "tenant", "network", "address", "instance")
