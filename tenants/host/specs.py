"""Pure descriptions of what should exist on the host (frozen dataclasses, no I/O).

The jobs layer builds these from database rows; the driver turns them into operations.
Each spec validates itself on construction, so an invalid value never reaches a file or
an argv (see :mod:`.validate`). Addresses are ``ipaddress`` objects of either version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import validate as v
from .errors import HostInputError
from .naming import check_kernel_id


def _sequence(value: Any, what: str, item_type: type | None = None) -> tuple:
    """``value`` as a tuple; anything but a list/tuple (of ``item_type``) is refused like any other bad input."""
    if not isinstance(value, (tuple, list)) or (
        item_type is not None and not all(isinstance(item, item_type) for item in value)
    ):
        raise HostInputError(f"{what} must be a list{f' of {item_type.__name__}' if item_type else ''}, "
                             f"not {type(value).__name__}")
    return tuple(value)


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet served by the network's dnsmasq.

    ``dhcp_address`` is chosen by the caller (the DB layer takes the first usable address
    that is not the gateway). There are no dynamic pools: dnsmasq runs in static mode and
    answers only the MACs the network's reservations name (IPAM in the database decides).

    IPv6 subnets carry Neutron's ``ipv6_ra_mode`` (dnsmasq sends the RA, with router lifetime 0
    on these isolated networks; None = an outside router does) and ``ipv6_address_mode``.
    """

    cidr: Any
    gateway: Any
    dhcp_address: Any
    dns_servers: tuple[Any, ...] = ()
    domain: str | None = None
    lease_seconds: int = 86400
    enable_dhcp: bool = True
    tag: str = "s0"
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None

    def __post_init__(self) -> None:
        net = v.network(self.cidr)
        v.ipv6_modes(net, self.ipv6_ra_mode, self.ipv6_address_mode)
        s = object.__setattr__
        s(self, "cidr", net)
        s(self, "gateway", None if self.gateway is None else v.in_subnet(v.ip(self.gateway, "gateway"), net, "gateway"))
        dhcp = v.in_subnet(v.ip(self.dhcp_address, "DHCP address"), net, "DHCP address")
        if dhcp == self.gateway:
            raise HostInputError(f"DHCP address {dhcp} must differ from the gateway")
        s(self, "dhcp_address", dhcp)
        dns = tuple(v.ip(x, "DNS server") for x in _sequence(self.dns_servers, "DNS servers"))
        for server in dns:
            if server.version != net.version:
                raise HostInputError(f"DNS server {server} is not an IPv{net.version} address like the subnet {net}")
        s(self, "dns_servers", dns)
        if self.domain is not None:
            v.domain(self.domain)
        if isinstance(self.lease_seconds, bool) or not isinstance(self.lease_seconds, int) or not (
            v.MIN_LEASE_SECONDS <= self.lease_seconds <= 2**31 - 1
        ):
            raise HostInputError(
                f"lease time {self.lease_seconds!r} is invalid: use an integer number of seconds "
                f">= {v.MIN_LEASE_SECONDS}"
            )
        v.tag(self.tag)


@dataclass(frozen=True)
class ReservationSpec:
    """A fixed address (or just a fixed name) for a MAC."""

    mac: str
    hostname: str | None = None
    ip: Any = None
    ip6: Any = None  # a DHCPv6 (stateful) address, next to the IPv4 one of a dual-stack instance

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", v.mac(self.mac))
        if self.hostname is not None:
            v.hostname(self.hostname)
        if self.ip is not None:
            object.__setattr__(self, "ip", v.ip(self.ip, "reserved address"))
        if self.ip6 is not None:
            object.__setattr__(self, "ip6", v.ip(self.ip6, "reserved IPv6 address"))
            if self.ip6.version != 6 or (self.ip is not None and self.ip.version != 4):
                raise HostInputError(f"reservation for {self.mac}: ip6 must be IPv6 and ip IPv4 when both are set")
        if self.hostname is None and self.ip is None:
            raise HostInputError(f"reservation for {self.mac} needs a hostname or an address")


@dataclass(frozen=True)
class NetworkSpec:
    """A tenant network: one segment, one dnsmasq serving ``subnets``."""

    kernel_id: str
    subnets: tuple[SubnetSpec, ...]
    reservations: tuple[ReservationSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        check_kernel_id(self.kernel_id)
        object.__setattr__(self, "subnets", _sequence(self.subnets, "subnets", SubnetSpec))
        object.__setattr__(self, "reservations", _sequence(self.reservations, "reservations", ReservationSpec))
        tags = [s.tag for s in self.subnets]
        if len(set(tags)) != len(tags):
            raise HostInputError(f"network {self.kernel_id}: subnet tags must be unique, got {tags}")
        nets = [s.cidr for s in self.subnets]
        for i, a in enumerate(nets):
            for b in nets[i + 1 :]:
                if a.overlaps(b):
                    raise HostInputError(f"network {self.kernel_id}: subnets {a} and {b} overlap")
        macs = [r.mac for r in self.reservations]
        if len(set(macs)) != len(macs):
            raise HostInputError(f"network {self.kernel_id}: a MAC has two reservations")
        for r in self.reservations:
            for ip in (r.ip, r.ip6):
                if ip is not None and not any(ip in s.cidr for s in self.subnets if s.enable_dhcp):
                    raise HostInputError(
                        f"reserved address {ip} for {r.mac} is not inside any DHCP-enabled subnet of "
                        f"network {self.kernel_id}"
                    )
        ips = [ip for r in self.reservations for ip in (r.ip, r.ip6) if ip is not None]
        if len(set(ips)) != len(ips):
            raise HostInputError(f"network {self.kernel_id}: an address is reserved twice")

    @property
    def dhcp_subnets(self) -> tuple[SubnetSpec, ...]:
        """Subnets dnsmasq serves (its interface carries only their addresses)."""
        return tuple(s for s in self.subnets if s.enable_dhcp)

    @property
    def has_ipv6(self) -> bool:
        """Whether any DHCP-enabled subnet is IPv6: the namespaces then get their IPv6 sysctls."""
        return any(s.cidr.version == 6 for s in self.dhcp_subnets)


@dataclass(frozen=True)
class InstanceSpec:
    """An instance stand-in: a namespace with one NIC running a real DHCP client."""

    kernel_id: str
    network_kernel_id: str
    mac: str
    hostname: str

    def __post_init__(self) -> None:
        check_kernel_id(self.kernel_id)
        check_kernel_id(self.network_kernel_id)
        object.__setattr__(self, "mac", v.mac(self.mac))
        v.hostname(self.hostname)
