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

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from tenants import events, selectors
from tenants.choices import LeaseState
from tenants.models import AllocationPool, LeaseEvent, Tenant

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


# The fields of ``selectors.network_data`` & co. for the four big lists, read with ``values_list``: building a
# model per row (with its select_related parents) was 90 % of a 500-network / 2,000-instance snapshot (1.4 s on
# a loaded 2-core machine). ``tests/live/test_snapshot_queries.py`` checks every row equals its ``*_data`` dict.
NETWORK_FIELDS = ("tenant", "name", "kernel_id", "node", "vni", "status", "status_reason")
SUBNET_FIELDS = ("network", "name", "cidr", "gateway", "dhcp_address", "domain_name", "lease_seconds", "enable_dhcp",
                 "dns_nameservers")
INSTANCE_FIELDS = ("network", "subnet", "hostname", "kernel_id", "node", "mac_address", "ip_address", "fixed_ip",
                   "status", "status_reason")
LEASE_FIELDS = ("subnet", "instance", "ip_address", "mac_address", "hostname", "state", "expires_at")


def _rows(qs: QuerySet, kind: str, fields: tuple[str, ...], *lookups: str) -> list[dict[str, Any]]:
    """``{"kind": kind, "id": pk, field: value, …}`` per row, as ``selectors._plain`` would build from a model
    (a foreign key as the id it holds), plus the raw ``lookups`` for the caller to turn into fields."""
    meta = qs.model._meta
    names = ("id", *fields, *lookups)
    columns = ("pk", *(meta.get_field(f).attname for f in fields), *lookups)
    rows = qs.select_related(None).prefetch_related(None).values_list(*columns)
    return [{"kind": kind} | dict(zip(names, row, strict=True)) for row in rows]


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
        n | {"dhcp_namespace": naming.fill(dhcp_tpl, kernel_id=n["kernel_id"]),
             "url": naming.fill(urls["network"], id=n["id"])}
        for n in _rows(visible.order_by("tenant_id", "name"), "network",
                       NETWORK_FIELDS)
    ]
    subnet_qs = selectors.subnets_for_user(user, tenant).order_by("network_id", "id")
    pools: dict[int, list[list[str]]] = {}
    for subnet_id, start, end in AllocationPool.objects.filter(subnet__in=subnet_qs).values_list(
            "subnet_id", "start", "end"):
        pools.setdefault(subnet_id, []).append([str(ipaddress.ip_address(start)), str(ipaddress.ip_address(end))])
    subnets = [s | {"pools": pools.get(s["id"], []), "dns_nameservers": list(s["dns_nameservers"] or [])}
               for s in _rows(subnet_qs, "subnet", SUBNET_FIELDS)]
    instances = [
        i | {"namespace": naming.fill(inst_tpl, kernel_id=i["kernel_id"]),
             "url": naming.fill(urls["instance"], id=i["id"])}
        for i in _rows(selectors.instances_for_user(user, tenant).order_by("network_id", "hostname"), "instance",
                       INSTANCE_FIELDS)
    ]
    lease_qs = selectors.leases_for_user(user, tenant).filter(state=LeaseState.ACTIVE).order_by("id")
    leases = _rows(lease_qs, "lease", LEASE_FIELDS, "subnet__network_id")
    for lease in leases:
        lease["network"] = lease.pop("subnet__network_id")
        lease["expires_at"] = lease["expires_at"].isoformat() if lease["expires_at"] else None
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
