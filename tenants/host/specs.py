"""Pure descriptions of what should exist on the host (frozen dataclasses, no I/O).

The jobs layer builds these from database rows; the driver turns them into operations.
Each spec validates itself on construction, so an invalid value never reaches a file or
an argv (see :mod:`.validate`). Addresses are ``ipaddress`` objects of either version so
IPv6 can be added without changing the shapes; the driver currently realises IPv4.
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
    """

    cidr: Any
    gateway: Any
    dhcp_address: Any
    dns_servers: tuple[Any, ...] = ()
    domain: str | None = None
    lease_seconds: int = 86400
    enable_dhcp: bool = True
    tag: str = "s0"

    def __post_init__(self) -> None:
        net = v.network(self.cidr)
        if net.version != 4:
            raise HostInputError(f"subnet {net}: only IPv4 is realised by this driver so far")
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", v.mac(self.mac))
        if self.hostname is not None:
            v.hostname(self.hostname)
        if self.ip is not None:
            object.__setattr__(self, "ip", v.ip(self.ip, "reserved address"))
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
            if r.ip is not None and not any(r.ip in s.cidr for s in self.subnets if s.enable_dhcp):
                raise HostInputError(
                    f"reserved address {r.ip} for {r.mac} is not inside any DHCP-enabled subnet of "
                    f"network {self.kernel_id}"
                )
        ips = [r.ip for r in self.reservations if r.ip is not None]
        if len(set(ips)) != len(ips):
            raise HostInputError(f"network {self.kernel_id}: an address is reserved twice")

    @property
    def dhcp_subnets(self) -> tuple[SubnetSpec, ...]:
        """Subnets dnsmasq serves (its interface carries only their addresses)."""
        return tuple(s for s in self.subnets if s.enable_dhcp)


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


# -- overlay (several nodes) ----------------------------------------------------------------------------
VXLAN_MAX_VNI = 2**24 - 1


def _vtep(value: Any, what: str) -> Any:
    """A VTEP: a private IPv4 address (it lives only in project underlay namespaces, never in the root one)."""
    addr = v.ip(value, what)
    if addr.version != 4 or not addr.is_private or addr.is_loopback:
        raise HostInputError(f"{what} {addr} must be a private IPv4 address")
    return addr


@dataclass(frozen=True)
class UnderlaySpec:
    """A node's underlay: namespace ``ul-<node>`` whose veth into the fabric's bridge holds the node's VTEP.

    ``fabric_ns`` / ``fabric_bridge`` name the shared fabric (owned by no node, so possibly under another
    prefix than the node's own names).
    """

    node_id: str
    vtep: Any
    prefixlen: int
    fabric_ns: str
    fabric_bridge: str

    def __post_init__(self) -> None:
        check_kernel_id(self.node_id)
        object.__setattr__(self, "vtep", _vtep(self.vtep, "VTEP address"))
        if not isinstance(self.prefixlen, int) or not 8 <= self.prefixlen <= 30:
            raise HostInputError(f"underlay prefix length {self.prefixlen!r} must be 8-30")


@dataclass(frozen=True)
class TunnelSpec:
    """A network's VXLAN port on one node: its VNI, the node's underlay and VTEP, and the other nodes' VTEPs
    (one flood entry each: head-end replication, the database playing Neutron's l2population)."""

    network_kernel_id: str
    vni: int
    node_id: str
    local_vtep: Any
    peers: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_kernel_id(self.network_kernel_id)
        check_kernel_id(self.node_id)
        if not isinstance(self.vni, int) or isinstance(self.vni, bool) or not 1 <= self.vni <= VXLAN_MAX_VNI:
            raise HostInputError(f"VNI {self.vni!r} must be 1-{VXLAN_MAX_VNI}")
        local = _vtep(self.local_vtep, "local VTEP")
        peers = tuple(sorted({_vtep(p, "peer VTEP") for p in _sequence(self.peers, "peers")}))
        if local in peers:
            raise HostInputError(f"the local VTEP {local} cannot be its own peer")
        object.__setattr__(self, "local_vtep", local)
        object.__setattr__(self, "peers", peers)
