"""Reads: what a user may see, and plain-dict views of objects for events, snapshots and the API.

Tenant isolation starts here: every interface obtains its querysets from ``*_for_user`` functions, so a row of
another tenant is simply not in the queryset (404, never 403 and never data).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from .choices import LeaseState, Role
from .models import Instance, Lease, LeaseEvent, Membership, Network, Subnet, Tenant


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
    }


# --- plain-dict views (events, snapshots) ----------------------------------------------------------------

def network_data(network: Network) -> dict[str, Any]:
    return {
        "kind": "network",
        "id": network.pk,
        "tenant": network.tenant_id,
        "name": network.name,
        "kernel_id": network.kernel_id,
        "node": network.node,
        "status": network.status,
        "status_reason": network.status_reason,
    }


def subnet_data(subnet: Subnet) -> dict[str, Any]:
    return {
        "kind": "subnet",
        "id": subnet.pk,
        "network": subnet.network_id,
        "name": subnet.name,
        "cidr": subnet.cidr,
        "gateway": subnet.gateway,
        "dhcp_address": subnet.dhcp_address,
        "pools": [[str(s), str(e)] for s, e in subnet.pools],
        "dns_nameservers": list(subnet.dns_nameservers or []),
        "domain_name": subnet.domain_name,
        "lease_seconds": subnet.lease_seconds,
        "enable_dhcp": subnet.enable_dhcp,
    }


def instance_data(instance: Instance) -> dict[str, Any]:
    return {
        "kind": "instance",
        "id": instance.pk,
        "network": instance.network_id,
        "subnet": instance.subnet_id,
        "hostname": instance.hostname,
        "kernel_id": instance.kernel_id,
        "mac_address": instance.mac_address,
        "ip_address": instance.ip_address,
        "fixed_ip": instance.fixed_ip,
        "status": instance.status,
        "status_reason": instance.status_reason,
    }


def lease_data(lease: Lease) -> dict[str, Any]:
    return {
        "kind": "lease",
        "id": lease.pk,
        "subnet": lease.subnet_id,
        "network": lease.subnet.network_id,
        "instance": lease.instance_id,
        "ip_address": lease.ip_address,
        "mac_address": lease.mac_address,
        "hostname": lease.hostname,
        "expires_at": lease.expires_at.isoformat() if lease.expires_at else None,
        "state": lease.state,
    }


def lease_event_data(event: LeaseEvent) -> dict[str, Any]:
    return {
        "kind": "lease_event",
        "id": event.pk,
        "subnet": event.subnet_id,
        "event": event.kind,
        "ip_address": event.ip_address,
        "mac_address": event.mac_address,
        "hostname": event.hostname,
        "at": event.at.isoformat() if event.at else None,
    }
