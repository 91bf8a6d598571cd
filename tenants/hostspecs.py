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
    """The driver's configuration for this node (settings are read once per process).

    The state directory is one per node under ``NETDASH_STATE_DIR``: agents of several nodes on one machine share
    a prefix and a state root, and each finds (and may remove) only its own pid and lease files, and only
    processes started from its own directory.
    """
    return HostConfig(
        prefix=settings.NETDASH_PREFIX,
        state_dir=(settings.NETDASH_STATE_DIR / settings.NETDASH_NODE).resolve(),
        dnsmasq=settings.NETDASH_DNSMASQ,
        busybox=settings.NETDASH_BUSYBOX,
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
        )
        # .all() and sorting here, not order_by()/exclude(): a batch job prefetches both relations for many networks.
        for s in sorted(network.subnets.all(), key=lambda s: s.pk)
    )
    dhcp_cidrs = [s.cidr for s in subnets if s.enable_dhcp]
    reservations = tuple(
        ReservationSpec(mac=i.mac_address, hostname=i.hostname, ip=i.ip_address)
        for i in sorted(network.instances.all(), key=lambda i: i.pk)
        if i.status != ObjectStatus.DELETING and i.ip_address is not None
        and any(ipaddress.ip_address(i.ip_address) in cidr for cidr in dhcp_cidrs)
    )
    return NetworkSpec(kernel_id=network.kernel_id, subnets=subnets, reservations=reservations)


def instance_spec(instance: Instance) -> InstanceSpec:
    return InstanceSpec(
        kernel_id=instance.kernel_id,
        network_kernel_id=instance.network.kernel_id,
        mac=instance.mac_address,
        hostname=instance.hostname,
    )
