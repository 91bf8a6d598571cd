"""Routed IPv6 prefixes: the deployment's ULA pool and the rule that routed prefixes never overlap.

Why: IPv4 behind a router is translated (SNAT, floating IPs), so two tenants may both route 10.0.1.0/24. IPv6 is
routed as it is (no NAT, :mod:`.host.nft`), so a prefix attached to a router must be unique among all routed
prefixes, across tenants. Isolated IPv6 networks may still overlap: namespaces keep them apart, as with IPv4.
To make unique prefixes easy, each deployment has one ULA /48 (RFC 4193, random global id drawn once and
stored) and hands out a /64 per subnet on request. The pool row is the lock both operations take first (before
any tenant lock), so two attaches or allocations racing on different tenants cannot both win.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .models import Network, Subnet, SubnetPool
from .services import subnet_create

ULA = ipaddress.ip_network("fd00::/8")  # locally assigned ULAs (RFC 4193 §3.2.1)
HOST_RESERVED = ipaddress.ip_network("fd00::/64")  # the machine's own: never hand out a /48 containing it
POOL_PREFIXLEN, SUBNET_PREFIXLEN = 48, 64


def _random_ula() -> ipaddress.IPv6Network:
    while True:
        global_id = secrets.randbits(40)
        net = ipaddress.ip_network(((int(ULA.network_address) | global_id << 80), POOL_PREFIXLEN))
        if not net.overlaps(HOST_RESERVED):
            return net


def validate_pool_prefix(value: str) -> ipaddress.IPv6Network:
    """A configured pool prefix: a ULA /48 in fd00::/8 that leaves fd00::/64 alone."""
    try:
        net = ipaddress.ip_network(value)
    except ValueError:
        raise ValidationError(f"NETDASH_ULA_PREFIX {value!r} is not a prefix; use a ULA /48 such as "
                              "fd12:3456:789a::/48.") from None
    if net.version != 6 or net.prefixlen != POOL_PREFIXLEN or not net.subnet_of(ULA) or net.overlaps(HOST_RESERVED):
        raise ValidationError(f"NETDASH_ULA_PREFIX {value} must be a /48 inside {ULA} other than fd00::/48.")
    return net


def pool() -> SubnetPool:
    """The deployment's pool row, created on first use (from ``NETDASH_ULA_PREFIX`` or a random global id)."""
    row = SubnetPool.objects.order_by("pk").first()
    if row is not None:
        return row
    net = validate_pool_prefix(settings.NETDASH_ULA_PREFIX) if settings.NETDASH_ULA_PREFIX else _random_ula()
    try:
        with transaction.atomic():
            return SubnetPool.objects.create(prefix=str(net))
    except IntegrityError:  # another process created it first
        return SubnetPool.objects.order_by("pk").first()  # type: ignore[return-value]


def lock_pool() -> ipaddress.IPv6Network:
    """Row-lock the pool (inside a transaction; before any tenant lock) and return its prefix."""
    row = SubnetPool.objects.select_for_update().get(pk=pool().pk)
    return ipaddress.ip_network(row.prefix)


def _next_free_prefix(prefix: ipaddress.IPv6Network) -> ipaddress.IPv6Network:
    """The lowest /64 of the pool (after the first, kept for the deployment itself) that no subnet overlaps.
    Caller holds the pool lock."""
    used = [ipaddress.ip_network(c) for c in Subnet.objects.filter(ip_version=6).values_list("cidr", flat=True)]
    used = [u for u in used if u.overlaps(prefix)]
    for i, candidate in enumerate(prefix.subnets(new_prefix=SUBNET_PREFIXLEN)):
        if i and not any(candidate.overlaps(u) for u in used):
            return candidate
    raise ValidationError({"cidr": [f"The subnet pool {prefix} has no free /64 left."]}, code="exhausted")


def subnet_create_from_pool(*, network: Network, **fields: Any) -> Subnet:
    """``services.subnet_create`` with the next free /64 of the pool as its CIDR (IPv6; ``fields`` as there,
    ``cidr`` excluded)."""
    if "cidr" in fields:
        raise ValidationError({"cidr": ["Leave the CIDR empty when the subnet comes from the pool."]})
    if network.external:
        raise ValidationError({"cidr": ["External networks take TEST-NET prefixes, not pool ones."]})
    with transaction.atomic():
        cidr = _next_free_prefix(lock_pool())
        return subnet_create(network=network, cidr=str(cidr), **fields)


def check_routed_prefix(subnet: Subnet) -> None:
    """Refuse to route an IPv6 subnet that overlaps a prefix already attached to any router (naming it; another
    tenant's subnet is named by its prefix only). Caller holds the pool lock (:func:`lock_pool`)."""
    net = subnet.ip_network
    if net.version != 6:
        return
    routed = (Subnet.objects.filter(ip_version=6, router_interface__isnull=False).exclude(pk=subnet.pk)
              .select_related("network", "router_interface__router"))
    for other in routed:
        if not other.ip_network.overlaps(net):
            continue
        if other.network.tenant_id == subnet.network.tenant_id:
            where = (f"subnet {other.name or other.cidr!r} of network {other.network.name!r}, routed by router "
                     f"{other.router_interface.router.name!r}")
        else:
            where = "a subnet of another tenant that is already routed"
        raise ValidationError({"subnet": [
            f"{net} overlaps {other.cidr} ({where}). Routed IPv6 is not translated, so routed prefixes must be "
            "unique: create the subnet from the subnet pool for a free prefix."]}, code="routed_overlap")
