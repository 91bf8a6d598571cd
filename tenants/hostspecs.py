"""Translate database rows into the host driver's specs, and settings into its config.

Why a separate module: the host driver is pure (no Django), the jobs are thin; this is the one place that
knows both shapes. IPAM already gave every instance its address, so dnsmasq runs in Neutron's "static" mode:
it answers only MACs that have a reservation, and the database decides who holds which IP.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from django.conf import settings

from .choices import ObjectStatus
from .host import HostConfig, HostDriver, LinuxHostDriver, Names
from .host.specs import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec
from .models import Instance, Network


@cache
def host_config() -> HostConfig:
    """The driver's configuration for this node (settings are read once per process)."""
    return HostConfig(
        prefix=settings.NETDASH_PREFIX,
        state_dir=settings.NETDASH_STATE_DIR.resolve(),
        dnsmasq=settings.NETDASH_DNSMASQ,
        busybox=settings.NETDASH_BUSYBOX,
        fast_ipv6=settings.NETDASH_FAST_IPV6,
    )


@cache
def driver() -> HostDriver:
    """This process's host driver (it keeps no per-network state, so one instance serves every job)."""
    return LinuxHostDriver(host_config())


def names() -> Names:
    """Kernel names for this node's prefix: the driver's own (the one naming module, bound to settings)."""
    return driver().names


def subnet_tag(subnet_id: int) -> str:
    """dnsmasq tag of a subnet: stable across renames and restarts."""
    return f"s{subnet_id}"


def network_spec(network: Network) -> NetworkSpec:
    """What the network's segment and dnsmasq should look like right now."""
    subnets = tuple(
        SubnetSpec(
            cidr=s.cidr,
            gateway=s.gateway,
            dhcp_address=s.dhcp_address,
            dns_servers=tuple(s.dns_nameservers or ()),
            domain=s.domain_name or None,
            lease_seconds=s.lease_seconds,
            enable_dhcp=s.enable_dhcp,
            tag=subnet_tag(s.pk),
            ipv6_ra_mode=s.ipv6_ra_mode or None,
            ipv6_address_mode=s.ipv6_address_mode or None,
        )
        # .all() and sorting here, not order_by()/exclude(): a batch job prefetches both relations for many networks.
        for s in sorted(network.subnets.all(), key=lambda s: s.pk)
    )
    # dnsmasq reserves IPv4 and DHCPv6-stateful addresses; SLAAC ones come from the MAC without it.
    reserved_in = [s.cidr for s in subnets if s.enable_dhcp and s.ipv6_address_mode in (None, "dhcpv6-stateful")]

    def reserved(address: str | None) -> str | None:
        return address if address and any(ipaddress.ip_address(address) in c for c in reserved_in) else None

    reservations = []
    for i in sorted(network.instances.all(), key=lambda i: i.pk):
        if i.status == ObjectStatus.DELETING:
            continue
        ip, ip6 = reserved(i.ip_address), reserved(i.ipv6_address)
        if ip is not None or ip6 is not None:
            reservations.append(ReservationSpec(mac=i.mac_address, hostname=i.hostname, ip=ip or ip6,
                                                ip6=ip6 if ip else None))
    return NetworkSpec(kernel_id=network.kernel_id, subnets=subnets, reservations=tuple(reservations))


def instance_spec(instance: Instance) -> InstanceSpec:
    return InstanceSpec(
        kernel_id=instance.kernel_id,
        network_kernel_id=instance.network.kernel_id,
        mac=instance.mac_address,
        hostname=instance.hostname,
    )
