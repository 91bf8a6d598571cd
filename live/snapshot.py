"""Reads for the live view: who may watch what, and the snapshot a websocket sends on connect and on resync.

Everything goes through ``tenants.selectors`` (``*_for_user``), so a snapshot cannot contain another tenant's
rows, and the dicts are the same ``*_data`` views the events carry: the browser applies a snapshot and a delta
with the same code.

Ordering matters for correctness: the group's stream position is read BEFORE the database. Events are sent
after their transaction commits, so every event numbered <= that sequence is already visible to the queries
that follow; the client drops deltas <= snapshot.seq of the same epoch and applies later ones (idempotent
upserts). A delta of another epoch means the counter restarted (Redis restarted): the client resyncs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from tenants import events, selectors
from tenants.choices import LeaseState
from tenants.models import LeaseEvent, Tenant

from . import naming

# Timeline rows sent with a lease-panel snapshot; the page keeps appending live events after that.
LEASE_EVENT_HISTORY = 200


@dataclass(frozen=True)
class View:
    """What one websocket watches: a tenant's group, or (superusers) every tenant; optionally one subnet."""

    group: str
    tenant_id: int | None  # None: all tenants (isolation view)
    subnet_id: int | None = None

    @property
    def scope(self) -> str:
        return "all" if self.tenant_id is None else "tenant"


def resolve_view(user: AbstractBaseUser | None, *, tenant_id: int | None, subnet_id: int | None = None) -> View | None:
    """The view ``user`` may open, or None (anonymous, not a member, no such tenant/subnet: all look the same).

    ``tenant_id=None`` asks for the all-tenants isolation view, which only superusers may watch.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if tenant_id is None:
        if not user.is_superuser:
            return None
        return View(group=events.ALL_TENANTS_GROUP, tenant_id=None)
    if not selectors.tenants_for_user(user).filter(pk=tenant_id).exists():
        return None
    if subnet_id is not None:
        tenant = Tenant.objects.get(pk=tenant_id)
        if not selectors.subnets_for_user(user, tenant).filter(pk=subnet_id).exists():
            return None
    return View(group=events.tenant_group(tenant_id), tenant_id=tenant_id, subnet_id=subnet_id)


def _tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {"kind": "tenant", "id": tenant.pk, "name": tenant.name, "slug": tenant.slug}


def build_snapshot(user: AbstractBaseUser, view: View) -> dict[str, Any] | None:
    """The full state of ``view`` as one message, or None when ``user`` may no longer watch it."""
    # Re-check on every snapshot: a resync after a membership was removed must not leak fresh data.
    if resolve_view(user, tenant_id=view.tenant_id, subnet_id=view.subnet_id) != view:
        return None
    position = events.stream_position(view.group)  # before the queries: see the module docstring
    tenants = selectors.tenants_for_user(user)
    tenant = None
    if view.tenant_id is not None:
        tenant = tenants.get(pk=view.tenant_id)
        tenants = tenants.filter(pk=tenant.pk)
    dhcp_tpl = naming.namespace_templates()["dhcp"]
    inst_tpl = naming.namespace_templates()["instance"]
    urls = naming.url_templates()

    visible = selectors.networks_for_user(user, tenant)
    networks = [
        selectors.network_data(n) | {"dhcp_namespace": naming.fill(dhcp_tpl, kernel_id=n.kernel_id),
                                     "url": naming.fill(urls["network"], id=n.pk)}
        for n in visible.order_by("tenant_id", "name")
    ]
    subnets = [selectors.subnet_data(s) for s in selectors.subnets_for_user(user, tenant).order_by("network_id", "id")]
    instances = [
        selectors.instance_data(i) | {"namespace": naming.fill(inst_tpl, kernel_id=i.kernel_id),
                                      "url": naming.fill(urls["instance"], id=i.pk)}
        for i in selectors.instances_for_user(user, tenant).order_by("network_id", "hostname")
    ]
    leases = [
        selectors.lease_data(lease)
        for lease in selectors.leases_for_user(user, tenant).filter(state=LeaseState.ACTIVE).order_by("id")
    ]
    routers = [selectors.router_data(r) | {"url": naming.fill(urls["router"], id=r.pk)}
               for r in selectors.routers_for_user(user, tenant).order_by("tenant_id", "name")]
    floating_ips = [selectors.floating_ip_data(f) | {"url": naming.fill(urls["floating_ip"], id=f.pk)}
                    for f in selectors.floating_ips_for_user(user, tenant).order_by("address")]
    # A router's gateway network usually belongs to the operators' tenant: drawn as the router's far side only.
    externals = [selectors.network_data(n) for n in selectors.external_networks_for_user(user).order_by("name")]
    dhcp_servers = selectors.dhcp_servers_by_network(visible.values("pk"))
    node_names = {n["node"] for n in networks} | {i["node"] for i in instances} | {
        row["node"] for rows in dhcp_servers.values() for row in rows}
    nodes = [selectors.node_data(name, state) for name, state in sorted(selectors.node_states(node_names).items())]
    lease_events: list[dict[str, Any]] = []
    if view.subnet_id is not None:
        rows = LeaseEvent.objects.filter(subnet_id=view.subnet_id).order_by("-at", "-id")[:LEASE_EVENT_HISTORY]
        lease_events = [selectors.lease_event_data(e) for e in reversed(list(rows))]
    return {
        "type": "snapshot",
        "scope": view.scope,
        "group": view.group,
        "epoch": position.epoch,
        "seq": position.seq,
        "ts": time.time(),
        "tenant": view.tenant_id,
        "subnet": view.subnet_id,
        "naming": naming.namespace_templates(),
        "urls": urls,
        "tenants": [_tenant_data(t) for t in tenants.order_by("name")],
        "networks": networks,
        "subnets": subnets,
        "instances": instances,
        "leases": leases,
        "lease_events": lease_events,
        "routers": routers,
        "floating_ips": floating_ips,
        "external_networks": externals,
        "dhcp_servers": [selectors.dhcp_servers_data(network_id, rows) for network_id, rows in dhcp_servers.items()],
        "nodes": nodes,
    }
