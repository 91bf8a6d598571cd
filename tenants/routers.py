"""Writes for routers, external networks and floating IPs (issue 14), next to ``services`` and built the same way.

Why a module of its own: these rules span several tenants' rows — an external network belongs to the
administrators' tenant but every tenant's routers and floating IPs take addresses from it — so they are kept
together. Lock order is always the caller's tenant → the external subnet (its IPAM) → the floating IP row, so two
tenants allocating from one external subnet queue on its row lock instead of taking the same address, and the
unique constraints catch anything that slips past (NetBox #10282). Jobs are enqueued only after commit.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import events, selectors
from .audit import audit_record
from .choices import ObjectStatus
from .models import FloatingIP, Instance, Network, Router, RouterInterface, Subnet, Tenant
from .queue import enqueue_on_commit
from .scheduling import enqueue_on_network_nodes, schedule_node
from .services import _ALLOCATION_ATTEMPTS, _check_quota, _lock_tenant, network_create
from .subnet_pools import check_routed_prefix, lock_pool

# --- helpers ------------------------------------------------------------------------------------------


def _enqueue_router(router: Router) -> None:
    enqueue_on_commit("tenants.jobs.realise_router", router.pk, node=router.node)


def _enqueue_with_networks(router: Router, networks: list[Network]) -> None:
    """A port or gateway added or removed changes where its network is present (the router's node may carry its
    segment only for the router): converge each network on every node it is on now, then the router.

    Why queued before the router's own job: on the router's node the network may be ``active`` (realised on its
    other nodes) without a segment there; jobs of one queue run in order, so the segment is up by the time the
    router plugs its port into it, and the other nodes' flood lists follow the router's node.
    """
    for network in networks:
        enqueue_on_network_nodes("tenants.jobs.realise_network", network)
    _enqueue_router(router)


def _port_networks(router: Router, subnet: Subnet) -> list[Network]:
    """The networks a port on ``subnet`` touches: its own; for IPv6 also the router's external network (who sends
    the subnet's RAs, router or dnsmasq, and the upstream's route back to it move with the port)."""
    external = [router.external_network] if router.external_network_id and subnet.ip_network.version == 6 else []
    return [subnet.network, *external]


def _publish_router(router: Router, kind: str = "router.updated") -> None:
    # A router read through ``routers_for_user`` carries its interfaces prefetched from before this change; drop
    # that cache so the event lists the subnets as they are now, not as they were when the view loaded the row.
    getattr(router, "_prefetched_objects_cache", {}).pop("interfaces", None)
    events.publish(router.tenant_id, kind, selectors.router_data(router))


def _check_external(network: Network) -> None:
    """Only networks an administrator made external take gateways and floating IPs."""
    if not network.external:
        names = ", ".join(repr(n.name) for n in Network.objects.filter(external=True)[:5]) or "none yet"
        raise ValidationError(
            {"external_network": [f"Network {network.name!r} is not an external network; pick an external one "
                                  f"({names}) or ask an administrator to create one."]},
            code="not_external",
        )


def _locked_external_subnet(network: Network) -> Subnet:
    """The external network's first subnet, row-locked: its IPAM hands out gateway and floating addresses."""
    subnet = Subnet.objects.select_for_update().filter(network=network).order_by("id").first()
    if subnet is None:
        raise ValidationError({"external_network": [f"External network {network.name!r} has no subnet; an "
                                                    "administrator must add one first."]}, code="no_subnet")
    return subnet


def _next_external_address(subnet: Subnet) -> str:
    """Lowest address of the external subnet's pools that no router gateway, floating IP or instance holds.
    Caller holds the subnet row lock."""
    used = {ipaddress.ip_address(a) for a in (
        *Router.objects.filter(external_subnet=subnet).exclude(external_ip=None).values_list("external_ip", flat=True),
        *FloatingIP.objects.filter(subnet=subnet).values_list("address", flat=True),
        *subnet.instances.exclude(ip_address=None).values_list("ip_address", flat=True),
    )}
    for start, end in subnet.pools:
        address = start
        while address <= end:
            if address not in used:
                return str(address)
            address += 1
    raise ValidationError(f"External subnet {subnet.cidr} has no free addresses left; release a floating IP or ask "
                          "an administrator for a larger range.", code="exhausted")


def _associated_through(router: Router, subnets: list[int] | None = None):
    """Floating IPs associated to instances behind ``router`` (optionally: on these subnets only)."""
    on = subnets if subnets is not None else list(router.interfaces.values_list("subnet_id", flat=True))
    return FloatingIP.objects.filter(instance__subnet_id__in=on, network_id=router.external_network_id)


# --- external networks (administrators) ---------------------------------------------------------------

def external_network_create(*, tenant: Tenant, name: str, subnet: dict[str, Any], simulated_upstream: bool = False,
                            actor: AbstractBaseUser | None = None) -> Network:
    """Create an external network (administrators only: admin and management commands call this, never the API).

    It belongs to ``tenant`` (the operators' own) like any network, and is realised the same way; every tenant may
    then set router gateways and allocate floating IPs on it. ``simulated_upstream`` attaches the project's
    upstream namespace (TEST-NET, no route out) for the demo, tests and labs.
    """
    network = network_create(tenant=tenant, name=name, subnet=subnet, actor=actor, external=True,
                             simulated_upstream=simulated_upstream)
    audit_record(actor=actor, tenant=tenant, action="network.external", obj=network,
                 detail=f"{name} upstream={simulated_upstream}")
    return network


# --- routers ------------------------------------------------------------------------------------------

def router_create(*, tenant: Tenant, name: str, external_network: Network | None = None,
                  actor: AbstractBaseUser | None = None) -> Router:
    """Create a router (optionally with its gateway to an external network); realise it after commit."""
    router = Router(tenant=tenant, name=name, node=schedule_node())
    router.full_clean(exclude=["tenant", "external_network", "external_subnet"])
    with transaction.atomic():
        locked = _lock_tenant(tenant)
        if locked.deleting:
            raise ValidationError("This tenant is being deleted.", code="deleting")
        _check_quota(locked, "routers", Router.objects.filter(tenant=tenant).count())
        if Router.objects.filter(tenant=tenant, name=name).exists():
            raise ValidationError({"name": [f"This tenant already has a router named {name!r}."]})
        try:
            with transaction.atomic():
                router.save()
        except IntegrityError:
            raise ValidationError({"name": [f"This tenant already has a router named {name!r}."]}) from None
        if external_network is not None:
            _set_gateway(router, external_network)
        audit_record(actor=actor, tenant=tenant, action="router.create", obj=router, detail=name)
        _enqueue_with_networks(router, [external_network] if external_network is not None else [])
        _publish_router(router, "router.created")
    return router


def _set_gateway(router: Router, external_network: Network) -> None:
    """Give the router an address on ``external_network`` (caller holds the tenant lock)."""
    _check_external(external_network)
    subnet = _locked_external_subnet(external_network)
    router.external_network, router.external_subnet = external_network, subnet
    router.external_ip = _next_external_address(subnet)
    router.save(update_fields=["external_network", "external_subnet", "external_ip", "updated_at"])


def router_set_gateway(*, router: Router, external_network: Network, actor: AbstractBaseUser | None = None) -> Router:
    """Connect the router to an external network: it takes an address there and SNATs its subnets behind it."""
    with transaction.atomic():
        _lock_tenant(router.tenant)
        router = Router.objects.select_for_update().get(pk=router.pk)
        if router.external_network_id == external_network.pk:
            return router
        if router.external_network_id is not None and _associated_through(router).exists():
            raise ValidationError({"external_network": [
                "Floating IPs of the current external network are associated through this router; disassociate "
                "them before moving its gateway."]}, code="in_use")
        previous = [router.external_network] if router.external_network_id is not None else []
        _set_gateway(router, external_network)
        audit_record(actor=actor, tenant=router.tenant, action="router.gateway.set", obj=router,
                     detail=f"{external_network.name} {router.external_ip}")
        _enqueue_with_networks(router, [*previous, external_network])
        _publish_router(router)
    return router


def router_clear_gateway(*, router: Router, actor: AbstractBaseUser | None = None) -> Router:
    """Disconnect the router from its external network (refused while floating IPs are associated through it)."""
    with transaction.atomic():
        _lock_tenant(router.tenant)
        router = Router.objects.select_for_update().get(pk=router.pk)
        if router.external_network_id is None:
            return router
        held = list(_associated_through(router).values_list("address", flat=True))
        if held:
            raise ValidationError(f"Floating IPs {', '.join(held)} are associated through this router; disassociate "
                                  "them first.", code="in_use")
        previous = router.external_network
        router.external_network = router.external_subnet = router.external_ip = None
        router.save(update_fields=["external_network", "external_subnet", "external_ip", "updated_at"])
        audit_record(actor=actor, tenant=router.tenant, action="router.gateway.clear", obj=router)
        _enqueue_with_networks(router, [previous])
        _publish_router(router)
    return router


def router_delete(*, router: Router, actor: AbstractBaseUser | None = None) -> None:
    """Mark for deletion; floating IPs associated through it are disassociated (they stay the tenant's), and the
    agent tears the namespace down, then deletes the row with its interfaces."""
    with transaction.atomic():
        _lock_tenant(router.tenant)
        released = list(_associated_through(router).select_for_update())
        FloatingIP.objects.filter(pk__in=[f.pk for f in released]).update(instance=None)
        Router.objects.filter(pk=router.pk).update(status=ObjectStatus.DELETING, status_reason="")
        router.status = ObjectStatus.DELETING
        audit_record(actor=actor, tenant=router.tenant, action="router.delete", obj=router,
                     detail=f"{router.name}; disassociated {', '.join(f.address for f in released) or 'nothing'}")
        enqueue_on_commit("tenants.jobs.destroy_router", router.pk, node=router.node)
        _publish_router(router)
        for fip in released:
            fip.instance = None
            events.publish(router.tenant_id, "floating_ip.updated", selectors.floating_ip_data(fip))


# --- router interfaces --------------------------------------------------------------------------------

def _attached(subnet: Subnet, router_name: str) -> ValidationError:
    return ValidationError({"subnet": [f"Subnet {subnet.cidr} is already attached to router {router_name!r}; "
                                       "detach it there first (one router per subnet)."]}, code="attached")


def router_interface_add(*, router: Router, subnet: Subnet, actor: AbstractBaseUser | None = None) -> RouterInterface:
    """Attach one of the tenant's subnets: the router takes the subnet's gateway address on its segment."""
    network = subnet.network
    if network.tenant_id != router.tenant_id:
        raise ValidationError({"subnet": ["The subnet belongs to another tenant."]})
    if network.external:
        raise ValidationError({"subnet": [f"{subnet.cidr} is on external network {network.name!r}; set it as the "
                                          "router's gateway instead."]})
    if not subnet.gateway:
        raise ValidationError({"subnet": [f"Subnet {subnet.cidr} has no gateway address for the router to take; set "
                                          "one on the subnet (e.g. its first usable address) and attach it again."]},
                              code="no_gateway")
    with transaction.atomic():
        if subnet.ip_network.version == 6:
            lock_pool()  # routed IPv6 prefixes are unique across tenants: one attach at a time checks them
        _lock_tenant(router.tenant)
        locked = Router.objects.select_for_update().get(pk=router.pk)
        if locked.status == ObjectStatus.DELETING:
            raise ValidationError("This router is being deleted.", code="deleting")
        other = RouterInterface.objects.filter(subnet=subnet).select_related("router").first()
        if other is not None:
            raise _attached(subnet, other.router.name)
        for attached in Subnet.objects.filter(router_interface__router=router):
            if attached.ip_network.version == subnet.ip_network.version and attached.ip_network.overlaps(
                    subnet.ip_network):
                raise ValidationError({"subnet": [f"{subnet.cidr} overlaps {attached.cidr}, already on this router; "
                                                  "put overlapping subnets behind different routers."]})
        check_routed_prefix(subnet)
        try:
            with transaction.atomic():
                interface = RouterInterface.objects.create(router=router, subnet=subnet)
        except IntegrityError:  # a concurrent attach won the subnet between the check and the insert
            raise _attached(subnet, "another router") from None
        audit_record(actor=actor, tenant=router.tenant, action="router.interface.add", obj=interface,
                     detail=f"{router.name} {subnet.cidr}")
        _enqueue_with_networks(router, _port_networks(locked, subnet))
        _publish_router(router)
    return interface


def router_interface_remove(*, interface: RouterInterface, actor: AbstractBaseUser | None = None) -> None:
    """Detach a subnet (refused while floating IPs are associated to instances on it)."""
    router = interface.router
    with transaction.atomic():
        _lock_tenant(router.tenant)
        held = list(_associated_through(router, [interface.subnet_id]).values_list("address", flat=True))
        if held:
            raise ValidationError(f"Floating IPs {', '.join(held)} reach instances on {interface.subnet.cidr} through "
                                  "this interface; disassociate them first.", code="in_use")
        audit_record(actor=actor, tenant=router.tenant, action="router.interface.remove", obj=interface,
                     detail=f"{router.name} {interface.subnet.cidr}")
        interface.delete()
        _enqueue_with_networks(router, _port_networks(router, interface.subnet))
        _publish_router(router)


# --- floating IPs -------------------------------------------------------------------------------------

def floating_ip_allocate(*, tenant: Tenant, external_network: Network,
                         actor: AbstractBaseUser | None = None) -> FloatingIP:
    """Take the next free address of an external network for the tenant (row lock on the external subnet)."""
    _check_external(external_network)
    last_error: IntegrityError | None = None
    for _ in range(_ALLOCATION_ATTEMPTS):
        try:
            with transaction.atomic():
                locked = _lock_tenant(tenant)
                _check_quota(locked, "floating_ips", FloatingIP.objects.filter(tenant=tenant).count())
                subnet = _locked_external_subnet(external_network)
                fip = FloatingIP(tenant=tenant, network=external_network, subnet=subnet,
                                 address=_next_external_address(subnet))
                fip.save()
                audit_record(actor=actor, tenant=tenant, action="floating_ip.allocate", obj=fip, detail=fip.address)
                events.publish(tenant.pk, "floating_ip.created", selectors.floating_ip_data(fip))
                return fip
        except IntegrityError as exc:  # another allocation won this address between our read and insert
            last_error = exc
    raise ValidationError(f"Could not allocate a floating IP after {_ALLOCATION_ATTEMPTS} attempts ({last_error}); "
                          "try again.", code="allocation")


def _router_for(instance: Instance, fip: FloatingIP) -> Router:
    """The router that can translate ``fip`` for ``instance``, or an error that says what is missing."""
    interface = RouterInterface.objects.filter(subnet_id=instance.subnet_id).select_related("router").first()
    cidr = instance.subnet.cidr
    if interface is None:
        raise ValidationError({"instance": [f"Instance {instance.hostname!r} is on subnet {cidr}, which no router is "
                                            "attached to; attach the subnet to a router whose gateway is on "
                                            f"{fip.network.name!r}, then associate again."]}, code="no_router")
    router = interface.router
    if router.external_network_id != fip.network_id:
        raise ValidationError({"instance": [f"Router {router.name!r} in front of {cidr} has no gateway to "
                                            f"{fip.network.name!r}; set its gateway to that network, then associate "
                                            "again."]}, code="no_gateway")
    return router


def floating_ip_associate(*, floating_ip: FloatingIP, instance: Instance,
                          actor: AbstractBaseUser | None = None) -> FloatingIP:
    """Point the floating IP at ``instance`` (moving it from another instance if associated)."""
    if instance.network.tenant_id != floating_ip.tenant_id:
        raise ValidationError({"instance": ["The instance belongs to another tenant."]})
    if not instance.ip_address:
        raise ValidationError({"instance": [f"Instance {instance.hostname!r} has no address yet."]})
    with transaction.atomic():
        _lock_tenant(floating_ip.tenant)
        fip = FloatingIP.objects.select_for_update(of=("self",)).select_related("network", "instance__subnet").get(
            pk=floating_ip.pk)
        if fip.instance_id == instance.pk:
            return fip
        router = _router_for(instance, fip)
        other = FloatingIP.objects.filter(instance=instance).first()
        if other is not None:
            raise ValidationError({"instance": [f"Instance {instance.hostname!r} already has floating IP "
                                                f"{other.address}; disassociate it first."]}, code="has_floating_ip")
        previous = fip.router
        fip.instance = instance
        try:
            with transaction.atomic():
                fip.save(update_fields=["instance", "updated_at"])
        except IntegrityError:
            raise ValidationError({"instance": [f"Instance {instance.hostname!r} was just given another floating "
                                                "IP."]}) from None
        audit_record(actor=actor, tenant=fip.tenant, action="floating_ip.associate", obj=fip,
                     detail=f"{fip.address} → {instance.hostname} {instance.ip_address}")
        for affected in {r.pk: r for r in (previous, router) if r is not None}.values():
            _enqueue_router(affected)
        events.publish(fip.tenant_id, "floating_ip.updated", selectors.floating_ip_data(fip))
    return fip


def floating_ip_disassociate(*, floating_ip: FloatingIP, actor: AbstractBaseUser | None = None) -> FloatingIP:
    """Stop translating the floating IP (it stays the tenant's)."""
    with transaction.atomic():
        _lock_tenant(floating_ip.tenant)
        fip = FloatingIP.objects.select_for_update(of=("self",)).select_related("instance").get(pk=floating_ip.pk)
        if fip.instance_id is None:
            return fip
        router = fip.router
        fip.instance = None
        fip.save(update_fields=["instance", "updated_at"])
        audit_record(actor=actor, tenant=fip.tenant, action="floating_ip.disassociate", obj=fip, detail=fip.address)
        if router is not None:
            _enqueue_router(router)
        events.publish(fip.tenant_id, "floating_ip.updated", selectors.floating_ip_data(fip))
    return fip


def floating_ip_release(*, floating_ip: FloatingIP, actor: AbstractBaseUser | None = None) -> None:
    """Give the address back to the external network (disassociating it first)."""
    fip = floating_ip_disassociate(floating_ip=floating_ip, actor=actor)
    with transaction.atomic():
        audit_record(actor=actor, tenant=fip.tenant, action="floating_ip.release", obj=fip, detail=fip.address)
        data = selectors.floating_ip_data(fip)
        fip.delete()
        events.publish(fip.tenant_id, "floating_ip.deleted", data)
