"""Writes: every change to tenants, networks, subnets and instances goes through these functions.

Pages, the REST API, admin and management commands all call the same services, so validation, quotas,
IP/MAC allocation, audit and job enqueueing happen in exactly one place. Services take keyword-only arguments,
call ``full_clean()`` before ``save()``, rely on database constraints and row locks for races, and enqueue host
jobs only after commit.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from . import events, selectors, validators
from .audit import audit_record, audit_record_many
from .choices import ObjectStatus, Role
from .models import (
    AllocationPool,
    DhcpServer,
    DhcpServerAddress,
    Instance,
    Membership,
    Network,
    Router,
    RouterInterface,
    Subnet,
    Tenant,
)
from .queue import enqueue_batches_on_commit, enqueue_on_commit
from .scheduling import (
    enqueue_on_network_nodes,
    instance_node,
    network_nodes,
    networks_nodes,
    schedule_dhcp_nodes,
    schedule_instance_node,
)

AUTO = "auto"
T = TypeVar("T")
_ALLOCATION_ATTEMPTS = 8


# --- helpers ------------------------------------------------------------------------------------------

def _lock_tenant(tenant: Tenant) -> Tenant:
    """Row-lock the tenant so quota checks and the insert they guard cannot interleave.

    Lock order is always tenant → network/subnet: every write also inserts an AuditEntry, whose foreign key
    takes a share lock on the tenant row, so a service that locked a subnet first and the tenant (implicitly)
    second deadlocked against instance_create on PostgreSQL.
    """
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def _check_quota(tenant: Tenant, kind: str, used: int, *, asked: int = 1) -> None:
    limit = getattr(tenant, f"quota_{kind}")
    if used + asked > limit:
        more = f", {asked} more asked for" if asked > 1 else ""
        raise ValidationError(
            f"Quota reached: tenant {tenant.name!r} may have at most {limit} {kind} ({used} in use{more}). "
            "Delete one or ask an administrator to raise the quota.",
            code="quota",
        )


def _enqueue_network(network: Network) -> None:
    enqueue_on_network_nodes("tenants.jobs.realise_network", network)


def _enqueue_instance(instance: Instance, func: str) -> None:
    """``func`` on the instance's node, and a realise of the network on its other nodes: their dnsmasq learns
    (or forgets) the reservation, their flood lists the node."""
    node = instance_node(instance)
    enqueue_on_commit(func, instance.pk, node=node)
    if func == "tenants.jobs.realise_instance":
        for other in sorted(network_nodes(instance.network) - {node}):
            enqueue_on_commit("tenants.jobs.realise_network", instance.network_id, node=other)


# --- tenants and members ------------------------------------------------------------------------------

def tenant_create(*, name: str, slug: str, actor: AbstractBaseUser | None = None, **quotas: int) -> Tenant:
    """Create a tenant (admins and the ``create_tenant`` command)."""
    tenant = Tenant(name=name, slug=slug, **quotas)
    tenant.full_clean()
    with transaction.atomic():
        tenant.save()
        audit_record(actor=actor, tenant=tenant, action="tenant.create", obj=tenant, detail=name)
    return tenant


TENANT_FIELDS = ("name", "slug", "quota_networks", "quota_subnets", "quota_instances", "quota_routers",
                 "quota_floating_ips")


def tenant_update(*, tenant: Tenant, actor: AbstractBaseUser | None = None, **changes: Any) -> Tenant:
    """Rename a tenant or change its quotas (admins); lowering a quota below use only blocks new objects."""
    unknown = set(changes) - set(TENANT_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in sorted(unknown)})
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.full_clean()
    with transaction.atomic():
        tenant.save(update_fields=list(changes))
        audit_record(actor=actor, tenant=tenant, action="tenant.update", obj=tenant, detail=", ".join(sorted(changes)))
    return tenant


def tenant_delete(*, tenant: Tenant, actor: AbstractBaseUser | None = None) -> None:
    """Delete a tenant: its routers and networks are torn down on their nodes first, then the row goes.

    Deleting the row directly would cascade to its routers and networks and leave their namespaces and dnsmasq
    running until the next reconcile. Instead every router and network is marked ``deleting`` with its teardown job
    (routers first, so their ports go before the segments), and the agent's ``destroy_router`` /
    ``destroy_networks`` call ``tenant_finish_deletion`` once the last of them is gone. The tenant's floating IPs go
    with its row: the only router translating them is its own.
    """
    with transaction.atomic():
        locked = _lock_tenant(tenant)  # network_create checks ``deleting`` under this lock: no network slips in
        Tenant.objects.filter(pk=locked.pk).update(deleting=True)
        tenant.deleting = True
        # tenant=None: the tenant's own audit entries go with it, this one must stay.
        audit_record(actor=actor, tenant=None, action="tenant.delete", obj=tenant,
                     detail=f"{tenant.name} ({tenant.slug})")
        routers = Router.objects.filter(tenant=tenant).exclude(status=ObjectStatus.DELETING)
        for router_id, node in routers.values_list("pk", "node"):
            enqueue_on_commit("tenants.jobs.destroy_router", router_id, node=node)
        routers.update(status=ObjectStatus.DELETING, status_reason="")
        network_delete_many(networks=list(Network.objects.filter(tenant=tenant).exclude(
            status=ObjectStatus.DELETING).select_related("tenant")), actor=actor)
        tenant_finish_deletion(tenant_ids=[tenant.pk])  # a tenant without networks or routers goes at once


def tenant_finish_deletion(*, tenant_ids: Iterable[int]) -> int:
    """Delete the tenants among ``tenant_ids`` that are marked for deletion and have no network or router left.

    Called by ``tenant_delete`` and by the agent after it deleted network or router rows; returns how many went.
    """
    done = Tenant.objects.filter(pk__in=list(tenant_ids), deleting=True).exclude(
        Exists(Network.objects.filter(tenant=OuterRef("pk")))).exclude(
        Exists(Router.objects.filter(tenant=OuterRef("pk"))))
    _, per_model = done.delete()
    return per_model.get(Tenant._meta.label, 0)


def membership_set(*, tenant: Tenant, user: AbstractBaseUser, role: str = Role.MEMBER,
                   actor: AbstractBaseUser | None = None) -> Membership:
    """Add ``user`` to ``tenant`` or change their role."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."})
    with transaction.atomic():
        _lock_tenant(tenant)
        current = Membership.objects.filter(user=user, tenant=tenant).first()
        if current is not None and role != Role.ADMIN:
            _check_not_last_admin(current, f"{user} is the last admin of {tenant}; make another member admin "
                                           "before changing this role.", field="role")
        membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        audit_record(actor=actor, tenant=tenant, action="member.set", obj=membership, detail=f"{user} as {role}")
    return membership


def _check_not_last_admin(membership: Membership, message: str, field: str | None = None) -> None:
    """A tenant keeps at least one admin: nobody could manage its members or read its audit log otherwise.
    Callers hold the tenant row lock, so two admins demoting each other at once cannot both succeed."""
    if membership.role != Role.ADMIN:
        return
    admins = Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.ADMIN)
    if not admins.exclude(pk=membership.pk).exists():
        raise ValidationError({field: [message]} if field else message, code="last_admin")


def membership_remove(*, membership: Membership, actor: AbstractBaseUser | None = None) -> None:
    """Remove a member; the tenant's last admin cannot be removed."""
    with transaction.atomic():
        _lock_tenant(membership.tenant)
        membership = Membership.objects.select_related("user", "tenant").filter(pk=membership.pk).first()
        if membership is None:  # removed meanwhile
            return
        _check_not_last_admin(membership, f"{membership.user} is the last admin of {membership.tenant}; make "
                                          "another member admin first.")
        audit_record(actor=actor, tenant=membership.tenant, action="member.remove", obj=membership,
               detail=str(membership.user))
        membership.delete()


# --- networks -----------------------------------------------------------------------------------------

def _save_network_name(network: Network, update_fields: Sequence[str] | None = None) -> None:
    """Save a new or renamed network whose name must be free in its tenant.

    Checked first for the readable message; the unique constraint catches a concurrent create/rename that took
    the name between the check and the save, and gets the same message.
    """
    taken = ValidationError({"name": f"This tenant already has a network named {network.name!r}."})
    if Network.objects.filter(tenant=network.tenant, name=network.name).exclude(pk=network.pk).exists():
        raise taken
    try:
        with transaction.atomic():
            network.save(update_fields=update_fields)
    except IntegrityError:
        raise taken from None


def network_create(*, tenant: Tenant, name: str, actor: AbstractBaseUser | None = None,
                   subnet: dict[str, Any] | None = None, external: bool = False,
                   simulated_upstream: bool = False) -> Network:
    """Create a network (and optionally its first subnet in the same transaction); realise it after commit.

    ``external``/``simulated_upstream`` are for administrators only (``routers.external_network_create``): no
    tenant-facing form or serializer passes them. An external network gets one DHCP server: routers and
    floating IPs allocate its addresses by their own rules, which know nothing of standby servers.
    """
    with transaction.atomic():
        _lock_tenant_for_networks(tenant, 1)
        network = _insert_network(tenant=tenant, name=name, actor=actor, subnet=subnet, external=external,
                                  simulated_upstream=simulated_upstream)
        _enqueue_network(network)
        # With its DHCP servers: a live view draws which nodes a new network is on (tunnels) from this one event.
        servers = selectors.dhcp_servers_by_network([network.pk])[network.pk]
        events.publish(tenant.pk, "network.created", selectors.network_data(network) | {"dhcp_servers": servers})
    return network


def network_create_many(*, tenant: Tenant, networks: Sequence[dict[str, Any]],
                        actor: AbstractBaseUser | None = None) -> list[Network]:
    """Create every network of ``networks`` (each ``{"name": …, "subnet": {…} or None}``) in one transaction, or
    none of them (NetBox's all-or-none bulk writes); a failure names the item it refused.

    Why: each ``network_create`` pays its own transaction, tenant lock, quota count, event round and job
    enqueue (a Redis round trip); here the jobs go in one pipeline and the events in one round.
    """
    with transaction.atomic():
        _lock_tenant_for_networks(tenant, len(networks))
        made = []
        for i, item in enumerate(networks):
            try:
                made.append(_insert_network(tenant=tenant, name=item["name"], actor=actor, subnet=item.get("subnet")))
            except ValidationError as exc:
                raise ValidationError(f"Network {i + 1} of {len(networks)} ({item['name']!r}): "
                                      f"{' '.join(exc.messages)}", code="bulk") from None
        nodes = networks_nodes(made)
        enqueue_batches_on_commit("tenants.jobs.realise_network_batch",
                                  ((node, n.pk) for n in made for node in sorted(nodes[n.pk])))
        servers = selectors.dhcp_servers_by_network([n.pk for n in made])
        events.publish_many([(tenant.pk, "network.created", selectors.network_data(n) | {"dhcp_servers": servers[n.pk]})
                             for n in made])
    return made


def _lock_tenant_for_networks(tenant: Tenant, count: int) -> None:
    """Lock the tenant (caller's transaction) and check it may take ``count`` more networks."""
    locked = _lock_tenant(tenant)
    if locked.deleting:
        raise ValidationError("This tenant is being deleted.", code="deleting")
    _check_quota(locked, "networks", Network.objects.filter(tenant=tenant).count(), asked=count)


def _insert_network(*, tenant: Tenant, name: str, actor: AbstractBaseUser | None, subnet: dict[str, Any] | None,
                    external: bool = False, simulated_upstream: bool = False) -> Network:
    """The rows of one new network (tenant locked by the caller): network, VNI, DHCP servers, first subnet."""
    dhcp_nodes = schedule_dhcp_nodes(1 if external else None)
    network = Network(tenant=tenant, name=name, node=dhcp_nodes[0], external=external,
                      simulated_upstream=simulated_upstream and external)
    network.full_clean(exclude=["tenant"])
    _save_network_name(network)
    _allocate_vni(network)
    DhcpServer.objects.bulk_create(DhcpServer(network=network, node=node, rank=rank)
                                   for rank, node in enumerate(dhcp_nodes))
    if subnet is not None:
        subnet_create(network=network, actor=actor, _enqueue=False, **subnet)
    audit_record(actor=actor, tenant=tenant, action="network.create", obj=network, detail=name)
    return network


VXLAN_MAX_VNI = 2**24 - 1


def _allocate_vni(network: Network) -> None:
    """The network's VNI is its id: unique and allocated by the database's own sequence, so concurrent creations
    can never collide (ids are not reused: Django's SQLite tables are AUTOINCREMENT, PostgreSQL uses sequences)."""
    if network.pk > VXLAN_MAX_VNI:
        raise ValidationError(f"No VXLAN network identifier is left (ids above {VXLAN_MAX_VNI}).", code="vni")
    network.vni = network.pk
    network.save(update_fields=["vni"])


def network_update(*, network: Network, name: str, actor: AbstractBaseUser | None = None) -> Network:
    """Rename a network (kernel names derive from ``kernel_id``, so nothing on the host changes)."""
    network.name = name
    network.full_clean(exclude=["tenant"])
    with transaction.atomic():
        _save_network_name(network, update_fields=["name", "updated_at"])
        audit_record(actor=actor, tenant=network.tenant, action="network.update", obj=network, detail=name)
        events.publish(network.tenant_id, "network.updated", selectors.network_data(network))
    return network


def network_delete(*, network: Network, actor: AbstractBaseUser | None = None) -> None:
    """Mark for deletion; the agent tears the host state down, then deletes the rows."""
    network_delete_many(networks=[network], actor=actor)


def network_delete_many(*, networks: Sequence[Network], actor: AbstractBaseUser | None = None) -> None:
    """Mark all of ``networks`` for deletion in one transaction, or none of them (an external network still in
    use refuses the whole call: NetBox's all-or-none bulk writes).

    Why a batch: the agent's teardown job takes every ``deleting`` network of its node along (up to a batch), so
    marking them together lets one job do the work of many; one call per network made the agent chase the
    caller one or two networks at a time (bench: teardown of 200 networks 13x the floor).
    """
    for network in networks:
        if network.external and (network.gateway_routers.exists() or network.floating_ips.exists()):
            raise ValidationError(f"External network {network.name!r} still holds router gateways or floating "
                                  "IPs; clear those gateways and release those floating IPs first.", code="in_use")
    ids = [n.pk for n in networks]
    with transaction.atomic():
        Network.objects.filter(pk__in=ids).update(status=ObjectStatus.DELETING, status_reason="")
        Instance.objects.filter(network__in=ids).update(status=ObjectStatus.DELETING)
        for network in networks:
            network.status = ObjectStatus.DELETING
        audit_record_many(actor=actor, action="network.delete",
                          entries=((n.tenant_id, n, n.name) for n in networks))
        # Every node each network is on tears its share down: one job per node for each batch of its networks.
        nodes = networks_nodes(networks)
        enqueue_batches_on_commit("tenants.jobs.destroy_network_batch",
                                  ((node, n.pk) for n in networks for node in sorted(nodes[n.pk])))
        # Viewers see the instances go too, not "active" badges until the rows disappear.
        events.publish_many([(n.tenant_id, "network.updated", selectors.network_data(n)) for n in networks] + [
            (i.network.tenant_id, "instance.updated", selectors.instance_data(i))
            for i in Instance.objects.filter(network__in=ids).select_related("network")])


def network_rerealise(*, networks: Sequence[Network], actor: AbstractBaseUser | None = None) -> int:
    """Ask the agent to converge these networks again (admin action, after manual tinkering)."""
    count = 0
    with transaction.atomic():
        for network in networks:
            if network.status == ObjectStatus.DELETING:
                continue
            audit_record(actor=actor, tenant=network.tenant, action="network.rerealise", obj=network)
            # force: walk the whole plan even if the network looks up (this follows manual tinkering)
            enqueue_on_network_nodes("tenants.jobs.realise_network", network, True)
            count += 1
    return count


# --- subnets ------------------------------------------------------------------------------------------

def _default_pools(network: validators.IPNetwork, reserved: Sequence[validators.IPAddress]):
    """All usable addresses minus the reserved ones, as contiguous ranges."""
    first, last = validators.usable_bounds(network)
    pools: list[tuple[validators.IPAddress, validators.IPAddress]] = []
    start = first
    for address in sorted(a for a in set(reserved) if first <= a <= last):
        if start < address:
            pools.append((start, address - 1))
        start = address + 1
    if start <= last:
        pools.append((start, last))
    return pools


def _resolve_subnet_addresses(
    net: validators.IPNetwork, gateway: str | None, dhcp_address: str | None, pools_input: object,
) -> tuple[validators.IPAddress | None, validators.IPAddress, list[tuple[validators.IPAddress, validators.IPAddress]]]:
    """Fill in defaults: gateway = first usable, DHCP address = first usable that is not the gateway."""
    errors: dict[str, list[str]] = {}
    first, last = validators.usable_bounds(net)
    gw: validators.IPAddress | None = None
    if gateway == AUTO:
        gw = first
    elif gateway not in (None, ""):
        try:
            gw = validators.parse_address(gateway, field="gateway")
            validators.validate_host_address(gw, net, what="gateway")
        except ValidationError as exc:
            errors["gateway"] = exc.messages
    dhcp: validators.IPAddress | None = None
    if dhcp_address in (None, "", AUTO):
        dhcp = first if gw != first else first + 1
    else:
        try:
            dhcp = validators.parse_address(dhcp_address, field="DHCP server address")
            validators.validate_host_address(dhcp, net, what="DHCP server address")
            if gw is not None and dhcp == gw:
                errors["dhcp_address"] = [f"The DHCP server address {dhcp} is the gateway; pick another address."]
        except ValidationError as exc:
            errors["dhcp_address"] = exc.messages
    pools: list[tuple[validators.IPAddress, validators.IPAddress]] = []
    try:
        pools = validators.parse_pools(pools_input)
    except ValidationError as exc:
        errors["allocation_pools"] = exc.messages
    if errors:
        raise ValidationError(errors)
    assert dhcp is not None
    if not pools:
        pools = _default_pools(net, [a for a in (gw, dhcp) if a is not None])
    try:
        validators.validate_pools(pools, net, excluded={"gateway": gw, "DHCP server address": dhcp})
    except ValidationError as exc:
        raise ValidationError({"allocation_pools": exc.messages}) from None
    if not pools:
        raise ValidationError({"allocation_pools": [f"{net} leaves no addresses to allocate."]})
    return gw, dhcp, pools


def _check_no_overlap(network: Network, net: validators.IPNetwork, exclude_pk: int | None = None) -> None:
    """Subnets of one network must not overlap; other networks (any tenant) may reuse the same CIDR."""
    for other in Subnet.objects.filter(network=network).exclude(pk=exclude_pk):
        if other.ip_network.version == net.version and other.ip_network.overlaps(net):
            raise ValidationError(
                {"cidr": [f"{net} overlaps {other.cidr}, already on network {network.name!r}. Subnets of one "
                          "network must not overlap (another network may use the same range)."]}
            )


def subnet_create(*, network: Network, cidr: str, gateway: str | None = AUTO, dhcp_address: str | None = None,
                  allocation_pools: object = None, dns_nameservers: Sequence[str] = (), domain_name: str = "",
                  lease_seconds: int = 3600, enable_dhcp: bool = True, name: str = "",
                  ipv6_ra_mode: str = "", ipv6_address_mode: str = "",
                  actor: AbstractBaseUser | None = None, _enqueue: bool = True) -> Subnet:
    """Add a subnet to a network and have the network's dnsmasq serve it (and, for IPv6, advertise it)."""
    try:
        net = (validators.validate_external_cidr if network.external else validators.validate_subnet_cidr)(cidr)
    except ValidationError as exc:
        raise ValidationError({"cidr": exc.messages}) from None
    gw, dhcp, pools = _resolve_subnet_addresses(net, gateway, dhcp_address, allocation_pools)
    subnet = Subnet(
        network=network, name=name, cidr=str(net), gateway=str(gw) if gw else None, dhcp_address=str(dhcp),
        dns_nameservers=dns_nameservers or [], domain_name=validators.lowercase_domain(domain_name or ""),
        lease_seconds=lease_seconds, enable_dhcp=enable_dhcp,
        ipv6_ra_mode=ipv6_ra_mode or "", ipv6_address_mode=ipv6_address_mode or "",
    )
    subnet.full_clean(exclude=["network"])
    with transaction.atomic():
        locked = _lock_tenant(network.tenant)
        Network.objects.select_for_update().filter(pk=network.pk).first()
        _check_quota(locked, "subnets", Subnet.objects.filter(network__tenant=network.tenant).count())
        _check_no_overlap(network, net)
        subnet.save()
        AllocationPool.objects.bulk_create(
            [AllocationPool(subnet=subnet, start=str(s), end=str(e)) for s, e in pools]
        )
        _allocate_standby_addresses(subnet)
        audit_record(actor=actor, tenant=network.tenant, action="subnet.create", obj=subnet, detail=str(net))
        if _enqueue:
            _enqueue_network(network)
        events.publish(network.tenant_id, "subnet.created", selectors.subnet_data(subnet))
    return subnet


def subnet_update(*, subnet: Subnet, actor: AbstractBaseUser | None = None, **changes: Any) -> Subnet:
    """Change DHCP settings (gateway, ranges, DNS, domain, lease time); dnsmasq reloads without restart.

    The CIDR is fixed once instances may hold addresses in it: changing it means a new subnet.
    """
    allowed = {"gateway", "dhcp_address", "allocation_pools", "dns_nameservers", "domain_name", "lease_seconds",
               "enable_dhcp", "name"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in sorted(unknown)})
    net = subnet.ip_network
    gateway = changes.get("gateway", subnet.gateway)
    dhcp_address = changes.get("dhcp_address", subnet.dhcp_address)
    pools_input = changes.get("allocation_pools", [(str(s), str(e)) for s, e in subnet.pools])
    gw, dhcp, pools = _resolve_subnet_addresses(net, gateway, dhcp_address, pools_input)
    subnet.gateway = str(gw) if gw else None
    subnet.dhcp_address = str(dhcp)
    for field in ("dns_nameservers", "domain_name", "lease_seconds", "enable_dhcp", "name"):
        if field in changes:
            setattr(subnet, field, changes[field])
    subnet.domain_name = validators.lowercase_domain(subnet.domain_name or "")
    subnet.full_clean(exclude=["network"])
    with transaction.atomic():
        # Under the subnet row lock instance_create takes, so no instance can grab the new gateway/DHCP address
        # between this check and the save.
        _lock_tenant(subnet.network.tenant)
        Subnet.objects.select_for_update().filter(pk=subnet.pk).first()
        used = {ipaddress.ip_address(a) for a in subnet.instances.exclude(ip_address=None)
                .values_list("ip_address", flat=True)}
        standby = _standby_addresses(subnet)
        for label, address in (("gateway", gw), ("DHCP server address", dhcp)):
            holder = "an instance" if address in used else "a standby DHCP server" if address in standby else None
            if address is not None and holder:
                raise ValidationError({"gateway" if label == "gateway" else "dhcp_address":
                                       [f"{address} is held by {holder}; it cannot become the {label}."]})
        subnet.save()
        subnet.allocation_pools.all().delete()
        AllocationPool.objects.bulk_create(
            [AllocationPool(subnet=subnet, start=str(s), end=str(e)) for s, e in pools]
        )
        _allocate_standby_addresses(subnet)  # DHCP just enabled: the standbys need their addresses now
        audit_record(actor=actor, tenant=subnet.network.tenant, action="subnet.update", obj=subnet,
               detail=", ".join(sorted(changes)))
        _enqueue_network(subnet.network)
        events.publish(subnet.network.tenant_id, "subnet.updated", selectors.subnet_data(subnet))
    return subnet


def _check_subnet_unrouted(subnet: Subnet) -> None:
    """A subnet a router is attached to, or that routers and floating IPs take addresses from, stays."""
    interface = RouterInterface.objects.filter(subnet=subnet).select_related("router").first()
    if interface is not None:
        raise ValidationError(f"Subnet {subnet.cidr} is attached to router {interface.router.name!r}; detach it "
                              "first.", code="in_use")
    if subnet.gateway_routers.exists() or subnet.floating_ips.exists():
        raise ValidationError(f"Routers or floating IPs still hold addresses of {subnet.cidr}; clear those gateways "
                              "and release those floating IPs first.", code="in_use")


def subnet_delete(*, subnet: Subnet, actor: AbstractBaseUser | None = None) -> None:
    """Remove a subnet that no instance uses."""
    network = subnet.network
    with transaction.atomic():
        # Check under the subnet row lock instance_create also takes: checked outside it, an instance created
        # in between made delete() raise ProtectedError (a 500) instead of this message.
        _lock_tenant(network.tenant)
        if not Subnet.objects.select_for_update().filter(pk=subnet.pk).exists():
            return
        in_use = subnet.instances.count() + subnet.ipv6_instances.count()
        if in_use:
            raise ValidationError(
                f"Subnet {subnet.cidr} still has {in_use} instance(s); delete them first.", code="in_use",
            )
        _check_subnet_unrouted(subnet)
        audit_record(actor=actor, tenant=network.tenant, action="subnet.delete", obj=subnet, detail=subnet.cidr)
        data = selectors.subnet_data(subnet)
        subnet.delete()
        _enqueue_network(network)
        events.publish(network.tenant_id, "subnet.deleted", data)


# --- instances ----------------------------------------------------------------------------------------

def generate_mac() -> str:
    """A random locally administered unicast MAC under ``NETDASH_MAC_BASE`` (fa:16:3e by default)."""
    return settings.NETDASH_MAC_BASE + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


def _standby_addresses(subnet: Subnet) -> set[validators.IPAddress]:
    """Addresses the network's standby DHCP servers hold in ``subnet``."""
    return {ipaddress.ip_address(a) for a in subnet.dhcp_server_addresses.values_list("address", flat=True)}


def _held_addresses(subnet: Subnet) -> set[validators.IPAddress]:
    """Addresses instances hold in ``subnet`` (as their own subnet's or their dual-stack IPv6 one) and those of
    the network's standby DHCP servers."""
    held = subnet.instances.exclude(ip_address=None).values_list("ip_address", flat=True)
    held_v6 = subnet.ipv6_instances.exclude(ipv6_address=None).values_list("ipv6_address", flat=True)
    return {ipaddress.ip_address(ip) for ip in [*held, *held_v6]} | _standby_addresses(subnet)


def _allocate_standby_addresses(subnet: Subnet, servers: Iterable[DhcpServer] | None = None) -> None:
    """Give each standby server (rank > 0) of the subnet's network its own pool address in a DHCP subnet, so
    every dnsmasq has its own server identifier (Neutron: one DHCP port per agent). Caller holds the subnet's
    row lock, as instance allocation does."""
    if not subnet.enable_dhcp:
        return
    if servers is None:
        servers = DhcpServer.objects.filter(network_id=subnet.network_id, rank__gt=0)
    for server in servers:
        if not DhcpServerAddress.objects.filter(server=server, subnet=subnet).exists():
            DhcpServerAddress.objects.create(server=server, subnet=subnet, address=str(_next_free_address(subnet)))


def _next_free_address(subnet: Subnet) -> validators.IPAddress:
    """Lowest free address in the subnet's pools (IPAM). Callers hold the subnet row lock."""
    used = _held_addresses(subnet)
    for start, end in subnet.pools:
        address = start
        while address <= end:
            if address not in used:
                return address
            address += 1
    raise ValidationError(
        f"Subnet {subnet.cidr} has no free addresses left in its allocation ranges.", code="exhausted"
    )


def _check_fixed_ip(subnet: Subnet, ip: str, exclude_pk: int | None = None) -> str:
    """A fixed IP the subnet allows (``Subnet.instance_address``) that no other instance holds."""
    if subnet.predicts_addresses:
        raise ValidationError({"ip_address": [f"Instances on {subnet.cidr} ({subnet.ipv6_address_mode}) take "
                                              "their address from their MAC by SLAAC; a fixed IP needs a "
                                              "dhcpv6-stateful subnet."]})
    try:
        address = subnet.instance_address(ip)
    except ValidationError as exc:
        raise ValidationError({"ip_address": exc.messages}) from None
    holder = (subnet.instances.filter(ip_address=str(address)).exclude(pk=exclude_pk).first()
              or subnet.ipv6_instances.filter(ipv6_address=str(address)).exclude(pk=exclude_pk).first())
    if holder is not None:
        raise ValidationError({"ip_address": [f"{address} is already reserved by instance {holder.hostname!r}."]})
    if address in _standby_addresses(subnet):
        raise ValidationError({"ip_address": [f"{address} is a standby DHCP server's address; pick another."]})
    return str(address)


def _allocate(subnet: Subnet, mac: str) -> str:
    """IPAM's address for a new instance: SLAAC's EUI-64 of its MAC (unique, as MACs are per network), or the
    lowest free pool address (IPv4, DHCPv6 stateful). Callers hold the subnet row lock."""
    if subnet.predicts_addresses:
        return str(validators.eui64_address(subnet.ip_network, mac))
    return str(_next_free_address(subnet))


def _dual_stack_subnet(network: Network, subnet: Subnet) -> Subnet | None:
    """The IPv6 subnet an instance on IPv4 ``subnet`` also gets an address in (the network's first), locked."""
    if subnet.ip_version != 4:
        return None
    return Subnet.objects.select_for_update().filter(network=network, ip_version=6).order_by("id").first()


def instance_create(*, network: Network, hostname: str, subnet: Subnet | None = None, ip_address: str | None = None,
                    actor: AbstractBaseUser | None = None) -> Instance:
    """Create an instance: allocate its MAC and IP under row locks, then realise it after commit."""
    hostname = hostname or ""
    subnet = _instance_subnet(network, subnet, [hostname])

    def create() -> Instance:
        instance = _insert_instance(network, _lock_for_instances(network, subnet, 1), hostname, ip_address)
        audit_record(actor=actor, tenant=network.tenant, action="instance.create", obj=instance,
                     detail=f"{hostname} {instance.ip_address}")
        # The network's dnsmasq must know the reservation before the client asks.
        _enqueue_instance(instance, "tenants.jobs.realise_instance")
        events.publish(network.tenant_id, "instance.created", selectors.instance_data(instance))
        return instance

    return _allocating(create)


def instance_create_many(*, network: Network, items: Sequence[dict[str, Any]], subnet: Subnet | None = None,
                         actor: AbstractBaseUser | None = None) -> list[Instance]:
    """Create every instance of ``items`` (each ``{"hostname": …, "ip_address": … or None}``) on one network in
    one transaction, or none of them (NetBox's all-or-none bulk writes); a failure names the item it refused.

    Why: each ``instance_create`` pays its own transaction, tenant lock, quota count, job and event; the agent
    then ran one job per instance, most of them finding their client already started by the first (bench
    figure 3). Here the jobs are one per node for each ``queue.BATCH`` instances and the events one round.
    """
    subnet = _instance_subnet(network, subnet, [item.get("hostname") or "" for item in items])

    def create() -> list[Instance]:
        locked_subnet = _lock_for_instances(network, subnet, len(items))
        made = []
        for i, item in enumerate(items):
            try:
                made.append(_insert_instance(network, locked_subnet, item.get("hostname") or "",
                                             item.get("ip_address")))
            except ValidationError as exc:
                raise ValidationError(f"Instance {i + 1} of {len(items)} ({item.get('hostname')!r}): "
                                      f"{' '.join(exc.messages)}", code="bulk") from None
        audit_record_many(actor=actor, action="instance.create", entries=(
            (network.tenant_id, i, f"{i.hostname} {i.ip_address}") for i in made))
        placed = {instance_node(i) for i in made}
        enqueue_batches_on_commit("tenants.jobs.realise_instance_batch", ((instance_node(i), i.pk) for i in made))
        for other in sorted(network_nodes(network) - placed):  # their dnsmasq learns the reservations
            enqueue_on_commit("tenants.jobs.realise_network", network.pk, node=other)
        events.publish_many([(network.tenant_id, "instance.created", selectors.instance_data(i)) for i in made])
        return made

    return _allocating(create)


def _allocating(create: Callable[[], T]) -> T:
    """Run ``create`` in a transaction, again up to ``_ALLOCATION_ATTEMPTS`` times: a concurrent request can win
    the same MAC/IP/hostname between our check and insert (an IntegrityError), and the re-check of the next try
    turns a real conflict into a readable error."""
    last_error: IntegrityError | None = None
    for _ in range(_ALLOCATION_ATTEMPTS):
        try:
            with transaction.atomic():
                return create()
        except IntegrityError as exc:
            last_error = exc
    raise ValidationError(f"Could not allocate an address or MAC after {_ALLOCATION_ATTEMPTS} attempts "
                          f"({last_error}); try again.", code="allocation")


def _instance_subnet(network: Network, subnet: Subnet | None, hostnames: Sequence[str]) -> Subnet:
    """What every instance create checks before its transaction: hostnames, a live network, the subnet (the
    network's IPv4 one first: on a dual-stack network the IPv6 address comes as well)."""
    for hostname in hostnames:
        try:
            validators.validate_hostname(hostname)
        except ValidationError as exc:
            raise ValidationError({"hostname": exc.messages}) from None
    if network.status == ObjectStatus.DELETING:
        raise ValidationError("This network is being deleted.", code="deleting")
    if subnet is None:
        subnet = network.subnets.order_by("ip_version", "id").first()
        if subnet is None:
            raise ValidationError({"subnet": ["The network has no subnet yet; add one first."]})
    elif subnet.network_id != network.pk:
        raise ValidationError({"subnet": ["The subnet belongs to another network."]})
    return subnet


def _lock_for_instances(network: Network, subnet: Subnet, count: int) -> Subnet:
    """Lock the tenant and the subnet (caller's transaction), check the quota allows ``count`` more instances;
    returns the locked subnet."""
    locked_tenant = _lock_tenant(network.tenant)
    locked_subnet = Subnet.objects.select_for_update().filter(pk=subnet.pk).first()
    if locked_subnet is None:  # deleted since the caller loaded it
        raise ValidationError({"subnet": ["The subnet was just deleted; pick another one."]})
    _check_quota(locked_tenant, "instances", Instance.objects.filter(network__tenant=network.tenant).count(),
                 asked=count)
    return locked_subnet


def _insert_instance(network: Network, locked_subnet: Subnet, hostname: str, ip_address: str | None) -> Instance:
    """Allocate one instance's MAC, addresses and node and save it (tenant and subnet locked by the caller)."""
    if Instance.objects.filter(network=network, hostname=hostname).exists():
        raise ValidationError({"hostname": [f"{hostname!r} is already used in network {network.name!r}."]})
    mac = generate_mac()
    if ip_address:
        address, fixed = _check_fixed_ip(locked_subnet, ip_address), True
    else:
        address, fixed = _allocate(locked_subnet, mac), False
    v6_subnet = _dual_stack_subnet(network, locked_subnet)
    instance = Instance(network=network, subnet=locked_subnet, hostname=hostname, mac_address=mac,
                        node=schedule_instance_node(network), ip_address=address, fixed_ip=fixed,
                        ipv6_subnet=v6_subnet, ipv6_address=_allocate(v6_subnet, mac) if v6_subnet else None)
    instance.full_clean(exclude=["network", "subnet", "ipv6_subnet"])
    instance.save()
    return instance


def instance_update(*, instance: Instance, ip_address: str | None, actor: AbstractBaseUser | None = None) -> Instance:
    """Change an instance's fixed IP (None = let IPAM keep/choose one); dnsmasq reloads and the client renews."""
    with transaction.atomic():
        _lock_tenant(instance.network.tenant)
        subnet = Subnet.objects.select_for_update().get(pk=instance.subnet_id)
        if ip_address:
            instance.ip_address, instance.fixed_ip = _check_fixed_ip(subnet, ip_address, exclude_pk=instance.pk), True
        else:
            instance.fixed_ip = False
        try:
            with transaction.atomic():
                instance.save(update_fields=["ip_address", "fixed_ip", "updated_at"])
        except IntegrityError:
            raise ValidationError({"ip_address": [f"{ip_address} was just taken by another instance."]}) from None
        audit_record(actor=actor, tenant=instance.network.tenant, action="instance.update", obj=instance,
               detail=str(instance.ip_address))
        _enqueue_instance(instance, "tenants.jobs.realise_instance")
        events.publish(instance.network.tenant_id, "instance.updated", selectors.instance_data(instance))
    return instance


def instance_delete(*, instance: Instance, actor: AbstractBaseUser | None = None) -> None:
    """Mark for deletion; the agent releases the lease, removes the namespace, then deletes the row."""
    with transaction.atomic():
        Instance.objects.filter(pk=instance.pk).update(status=ObjectStatus.DELETING)
        instance.status = ObjectStatus.DELETING
        audit_record(actor=actor, tenant=instance.network.tenant, action="instance.delete", obj=instance,
               detail=instance.hostname)
        _enqueue_instance(instance, "tenants.jobs.destroy_instance")
        events.publish(instance.network.tenant_id, "instance.updated", selectors.instance_data(instance))
