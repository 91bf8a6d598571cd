"""Pure descriptions of what should exist on the host (frozen dataclasses, no I/O).

The jobs layer builds these from database rows; the driver turns them into operations.
Each spec validates itself on construction, so an invalid value never reaches a file or
an argv (see :mod:`.validate`). Addresses are ``ipaddress`` objects of either version.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from . import validate as v
from .errors import HostInputError
from .naming import check_ifname, check_kernel_id


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

    ``peer_dhcp_addresses``: the other DHCP servers' addresses on this subnet (HA DHCP). Without DNS servers of
    its own the subnet announces every server as a DNS server, this one first.
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
    peer_dhcp_addresses: tuple[Any, ...] = ()

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
        peers = tuple(v.in_subnet(v.ip(x, "peer DHCP address"), net, "peer DHCP address")
                      for x in _sequence(self.peer_dhcp_addresses, "peer DHCP addresses"))
        if dhcp in peers or len(set(peers)) != len(peers):
            raise HostInputError(f"peer DHCP addresses {peers} must be distinct and differ from {dhcp}")
        s(self, "peer_dhcp_addresses", peers)
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
    """A tenant network: one segment, one dnsmasq serving ``subnets``.

    ``ha``: this dnsmasq is one of several servers of the network (HA DHCP, issue 13): it runs non-authoritative
    (an authoritative one NAKs requests naming another server's identifier), its lease file is pre-seeded with
    every reservation (a non-authoritative server ignores the rebind of a client it never leased to, and the
    client loses its address), and names come from an addn-hosts file (else it answers NXDOMAIN for hosts
    another server leased). Measured: clean failover in 1.3 s (network-services README §4).
    """

    kernel_id: str
    subnets: tuple[SubnetSpec, ...]
    reservations: tuple[ReservationSpec, ...] = field(default=())
    ha: bool = False

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
    """An instance stand-in: a namespace with one NIC running real DHCP clients.

    ``dhcpv4``: the network has a v4 subnet (udhcpc runs); ``dhcpv6``: its v6 subnet is dhcpv6-stateful or
    -stateless (dhcpcd runs). A SLAAC-only instance runs neither for v6: the kernel configures itself.
    """

    kernel_id: str
    network_kernel_id: str
    mac: str
    hostname: str
    dhcpv4: bool = True
    dhcpv6: bool = False

    def __post_init__(self) -> None:
        check_kernel_id(self.kernel_id)
        check_kernel_id(self.network_kernel_id)
        object.__setattr__(self, "mac", v.mac(self.mac))
        v.hostname(self.hostname)


# -- routers and the simulated upstream ----------------------------------------------------------------------
# Every address here reaches an nftables rule or an ``ip`` argv, so each is parsed into an ``ipaddress`` object
# (never kept as text) and checked against the others before anything is planned. NAT and floating IPs are IPv4;
# IPv6 is routed without NAT (tenant prefixes come from the subnet pool and never overlap once routed).

TEST_NETS = (ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24"))  # RFC 5737
TEST_NET6 = ipaddress.ip_network("2001:db8::/32")  # RFC 3849: the only IPv6 outside world we simulate


def _ipv4_interface(value: Any, what: str) -> ipaddress.IPv4Interface:
    """An address with its prefix (``10.0.1.1/24``), a usable host address of that prefix."""
    if isinstance(value, str) and value.isprintable():
        try:
            value = ipaddress.ip_interface(value)
        except ValueError:
            pass
    if not isinstance(value, ipaddress.IPv4Interface):
        raise HostInputError(f"{what} {repr(value)[:80]} is not an IPv4 address with a prefix (e.g. '10.0.1.1/24')")
    v.in_subnet(value.ip, value.network, what)
    return value


def _ipv6_interface(value: Any, what: str) -> ipaddress.IPv6Interface:
    """An IPv6 address with its prefix (``2001:db8:1::1/64``)."""
    if isinstance(value, str) and value.isprintable():
        try:
            value = ipaddress.ip_interface(value)
        except ValueError:
            pass
    if not isinstance(value, ipaddress.IPv6Interface) or value.network.prefixlen > 120:
        raise HostInputError(f"{what} {repr(value)[:80]} is not an IPv6 address with a prefix of /120 or shorter "
                             "(e.g. '2001:db8:1::1/64')")
    v.in_subnet(value.ip, value.network, what)
    return value


def _interface(value: Any, what: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An address with its prefix of either version."""
    if isinstance(value, ipaddress.IPv6Interface) or (isinstance(value, str) and ":" in value):
        return _ipv6_interface(value, what)
    return _ipv4_interface(value, what)


def _ipv4(value: Any, what: str) -> ipaddress.IPv4Address:
    addr = v.ip(value, what)
    if addr.version != 4:
        raise HostInputError(f"{what} {addr}: only IPv4 is realised by this driver so far")
    return addr


# -- overlay (several nodes) ----------------------------------------------------------------------------
VXLAN_MAX_VNI = 2**24 - 1


def _vtep(value: Any, what: str) -> Any:
    """A VTEP: a private IPv4 address (it lives only in project underlay namespaces, never in the root one)."""
    addr = v.ip(value, what)
    if addr.version != 4 or not addr.is_private or addr.is_loopback:
        raise HostInputError(f"{what} {addr} must be a private IPv4 address")
    return addr


@dataclass(frozen=True)
class RouterAdvertSpec:
    """One IPv6 prefix the router advertises on a port, with the flags of the subnet's ``ipv6_ra_mode``
    (Neutron: the RA mode says who sends the RAs; for a routed subnet the router does, with a lifetime > 0)."""

    prefix: Any  # ip_network, the subnet
    ra_mode: str  # slaac (A), dhcpv6-stateless (A, O) or dhcpv6-stateful (M)

    def __post_init__(self) -> None:
        net = v.network(self.prefix)
        if net.version != 6:
            raise HostInputError(f"router advertisement for {net}: only IPv6 prefixes are advertised")
        v.ipv6_modes(net, self.ra_mode, self.ra_mode)
        object.__setattr__(self, "prefix", net)


@dataclass(frozen=True)
class RouterPortSpec:
    """A router's interface on a tenant network: the gateway address(es) of the subnets it routes, of either
    version, and the IPv6 prefixes it advertises there (each one must be a prefix of one of its addresses)."""

    kernel_id: str  # the router-interface row's own id: names the port's devices
    network_kernel_id: str
    addresses: tuple[Any, ...]  # ip_interface per subnet, e.g. 10.0.1.1/24 (the subnet's gateway)
    adverts: tuple[RouterAdvertSpec, ...] = ()

    def __post_init__(self) -> None:
        check_kernel_id(self.kernel_id)
        check_kernel_id(self.network_kernel_id)
        addrs = tuple(_interface(a, "router port address") for a in _sequence(self.addresses, "addresses"))
        if not addrs:
            raise HostInputError(f"router port {self.kernel_id} needs at least one address")
        object.__setattr__(self, "addresses", addrs)
        adverts = _sequence(self.adverts, "router advertisements", RouterAdvertSpec)
        prefixes = [a.prefix for a in adverts]
        if len(set(prefixes)) != len(prefixes) or not set(prefixes) <= {a.network for a in addrs}:
            raise HostInputError(f"router port {self.kernel_id}: each advertised prefix must be the prefix of one "
                                 f"of its addresses, once; got {', '.join(map(str, prefixes))}")
        object.__setattr__(self, "adverts", adverts)


@dataclass(frozen=True)
class RouterGatewaySpec:
    """A router's port on an external network: its address there and the upstream gateway (default route)."""

    network_kernel_id: str
    address: Any  # ip_interface, e.g. 203.0.113.10/24
    gateway: Any = None  # ip_address in the same subnet, or None: no default route
    address6: Any = None  # ip_interface on the external IPv6 subnet (2001:db8::/32), e.g. 2001:db8:ff::10/64
    gateway6: Any = None  # the IPv6 default route's next hop in that subnet, or None

    def __post_init__(self) -> None:
        check_kernel_id(self.network_kernel_id)
        addr = _ipv4_interface(self.address, "external address")
        object.__setattr__(self, "address", addr)
        if self.gateway is not None:
            gw = v.in_subnet(_ipv4(self.gateway, "external gateway"), addr.network, "external gateway")
            if gw == addr.ip:
                raise HostInputError(f"external gateway {gw} must differ from the router's address")
            object.__setattr__(self, "gateway", gw)
        self._ipv6()

    def _ipv6(self) -> None:
        if self.address6 is None:
            if self.gateway6 is not None:
                raise HostInputError("an external IPv6 gateway needs an external IPv6 address")
            return
        addr6 = _ipv6_interface(self.address6, "external IPv6 address")
        if not addr6.network.subnet_of(TEST_NET6):
            raise HostInputError(f"external IPv6 address {addr6} must lie inside {TEST_NET6}: the outside world "
                                 "here is simulated")
        object.__setattr__(self, "address6", addr6)
        if self.gateway6 is not None:
            gw6 = v.in_subnet(v.ip(self.gateway6, "external IPv6 gateway"), addr6.network, "external IPv6 gateway")
            if gw6 == addr6.ip:
                raise HostInputError(f"external IPv6 gateway {gw6} must differ from the router's address")
            object.__setattr__(self, "gateway6", gw6)


@dataclass(frozen=True)
class FloatingIPSpec:
    """An external address that stands for one tenant address (DNAT in, SNAT out)."""

    floating_ip: Any
    fixed_ip: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "floating_ip", _ipv4(self.floating_ip, "floating IP"))
        object.__setattr__(self, "fixed_ip", _ipv4(self.fixed_ip, "fixed IP"))


@dataclass(frozen=True)
class RouterSpec:
    """A router: ports on tenant networks, an optional external gateway, SNAT of the attached subnets, FIPs."""

    kernel_id: str
    ports: tuple[RouterPortSpec, ...]
    gateway: RouterGatewaySpec | None
    snat: bool = True
    floating_ips: tuple[FloatingIPSpec, ...] = ()

    def __post_init__(self) -> None:
        check_kernel_id(self.kernel_id)
        ports = _sequence(self.ports, "router ports", RouterPortSpec)
        object.__setattr__(self, "ports", ports)
        if self.gateway is not None and not isinstance(self.gateway, RouterGatewaySpec):
            raise HostInputError(f"router gateway must be a RouterGatewaySpec, not {type(self.gateway).__name__}")
        if not isinstance(self.snat, bool):
            raise HostInputError(f"snat must be True or False, not {self.snat!r}")
        fips = _sequence(self.floating_ips, "floating IPs", FloatingIPSpec)
        object.__setattr__(self, "floating_ips", fips)
        ids = [p.kernel_id for p in ports]
        if len(set(ids)) != len(ids):
            raise HostInputError(f"router {self.kernel_id}: two ports have the same id")
        nets = [a.network for p in ports for a in p.addresses]
        for i, a in enumerate(nets):
            for b in nets[i + 1 :]:
                if a.overlaps(b):
                    raise HostInputError(f"router {self.kernel_id}: subnets {a} and {b} overlap")
        if self.gateway is not None and self.gateway.network_kernel_id in {p.network_kernel_id for p in ports}:
            raise HostInputError(f"router {self.kernel_id}: network {self.gateway.network_kernel_id} cannot be "
                                 "both external and attached as a tenant network")
        if fips and self.gateway is None:
            raise HostInputError(f"router {self.kernel_id}: floating IPs need an external gateway")
        for what in ("floating_ip", "fixed_ip"):
            values = [getattr(f, what) for f in fips]
            if len(set(values)) != len(values):
                raise HostInputError(f"router {self.kernel_id}: a {what.replace('_', ' ')} appears twice")
        for f in fips:
            ext = self.gateway.address  # type: ignore[union-attr]  # checked above
            v.in_subnet(f.floating_ip, ext.network, "floating IP")
            if f.floating_ip in (ext.ip, self.gateway.gateway):  # type: ignore[union-attr]
                raise HostInputError(f"floating IP {f.floating_ip} is the router's or the upstream's address")
            if not any(f.fixed_ip in n for n in nets):
                raise HostInputError(f"fixed IP {f.fixed_ip} of floating IP {f.floating_ip} is not in a subnet "
                                     f"attached to router {self.kernel_id}")

    @property
    def subnets(self) -> tuple[Any, ...]:
        """The attached IPv4 tenant subnets (what SNAT translates)."""
        return tuple(a.network for p in self.ports for a in p.addresses if a.version == 4)

    @property
    def subnets6(self) -> tuple[Any, ...]:
        """The attached IPv6 tenant subnets (routed as they are: no NAT for IPv6)."""
        return tuple(a.network for p in self.ports for a in p.addresses if a.version == 6)

    @property
    def routes_ipv6(self) -> bool:
        """Whether the router forwards IPv6 (it then runs its RA daemon and its ip6 filter table)."""
        return bool(self.subnets6)


@dataclass(frozen=True)
class UpstreamSpec:
    """The simulated outside world on an external network: one TEST-NET address, no route anywhere else."""

    network_kernel_id: str
    address: Any  # ip_interface inside 203.0.113.0/24 or 198.51.100.0/24, e.g. 203.0.113.1/24
    address6: Any = None  # ip_interface inside 2001:db8::/32, e.g. 2001:db8:ff::1/64
    routes6: tuple[tuple[Any, Any], ...] = ()  # (tenant prefix, the router's external IPv6 address): the way back

    def __post_init__(self) -> None:
        check_kernel_id(self.network_kernel_id)
        addr = _ipv4_interface(self.address, "upstream address")
        if not any(addr.network.subnet_of(t) for t in TEST_NETS):
            raise HostInputError(f"upstream address {addr} must lie inside a TEST-NET range "
                                 f"({', '.join(map(str, TEST_NETS))}): the outside world here is simulated")
        object.__setattr__(self, "address", addr)
        routes6 = _sequence(self.routes6, "upstream IPv6 routes", tuple)
        if self.address6 is None:
            if routes6:
                raise HostInputError("upstream IPv6 routes need an upstream IPv6 address")
            object.__setattr__(self, "routes6", ())
            return
        addr6 = _ipv6_interface(self.address6, "upstream IPv6 address")
        if not addr6.network.subnet_of(TEST_NET6):
            raise HostInputError(f"upstream IPv6 address {addr6} must lie inside {TEST_NET6}: the outside world "
                                 "here is simulated")
        object.__setattr__(self, "address6", addr6)
        routes = []
        for route in routes6:
            if len(route) != 2:
                raise HostInputError(f"upstream IPv6 route {repr(route)[:80]} must be (prefix, next hop)")
            prefix = v.network(route[0])
            via = v.in_subnet(v.ip(route[1], "upstream IPv6 next hop"), addr6.network, "upstream IPv6 next hop")
            if prefix.version != 6 or prefix.overlaps(addr6.network):
                raise HostInputError(f"upstream IPv6 route {prefix}: must be an IPv6 tenant prefix outside "
                                     f"{addr6.network}")
            routes.append((prefix, via))
        prefixes = [p for p, _ in routes]
        for i, a in enumerate(prefixes):
            for b in prefixes[i + 1:]:
                if a.overlaps(b):
                    raise HostInputError(f"upstream IPv6 routes {a} and {b} overlap (routed prefixes never do)")
        object.__setattr__(self, "routes6", tuple(sorted(routes)))


@dataclass(frozen=True)
class UnderlaySpec:
    """A node's underlay: namespace ``ul-<node>`` whose veth into the fabric's bridge holds the node's VTEP.

    ``fabric_ns`` / ``fabric_bridge`` name the shared fabric (owned by no node, so possibly under another
    prefix than the node's own names). ``host_device`` set: a deployment's real-host underlay instead (the
    host's interface already holding ``vtep``; no fabric, no underlay namespace: nothing to create).
    """

    node_id: str
    vtep: Any
    prefixlen: int
    fabric_ns: str
    fabric_bridge: str
    host_device: str | None = None

    def __post_init__(self) -> None:
        check_kernel_id(self.node_id)
        if self.host_device is not None:
            check_ifname(self.host_device, "underlay device")
        object.__setattr__(self, "vtep", _vtep(self.vtep, "VTEP address"))
        if not isinstance(self.prefixlen, int) or not 8 <= self.prefixlen <= 30:
            raise HostInputError(f"underlay prefix length {self.prefixlen!r} must be 8-30")


@dataclass(frozen=True)
class TunnelSpec:
    """A network's VXLAN port on one node: its VNI, the node's underlay and VTEP, and the other nodes' VTEPs
    (one flood entry each: head-end replication, the database playing Neutron's l2population). ``host_device``:
    the VXLAN device is made on that interface of the host's own namespace (a real-host underlay)."""

    network_kernel_id: str
    vni: int
    node_id: str
    local_vtep: Any
    peers: tuple = field(default_factory=tuple)
    host_device: str | None = None

    def __post_init__(self) -> None:
        check_kernel_id(self.network_kernel_id)
        check_kernel_id(self.node_id)
        if self.host_device is not None:
            check_ifname(self.host_device, "underlay device")
        if not isinstance(self.vni, int) or isinstance(self.vni, bool) or not 1 <= self.vni <= VXLAN_MAX_VNI:
            raise HostInputError(f"VNI {self.vni!r} must be 1-{VXLAN_MAX_VNI}")
        local = _vtep(self.local_vtep, "local VTEP")
        peers = tuple(sorted({_vtep(p, "peer VTEP") for p in _sequence(self.peers, "peers")}))
        if local in peers:
            raise HostInputError(f"the local VTEP {local} cannot be its own peer")
        object.__setattr__(self, "local_vtep", local)
        object.__setattr__(self, "peers", peers)
