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
from .host.naming import check_ifname
from .host.specs import (
    FloatingIPSpec,
    InstanceSpec,
    NetworkSpec,
    ReservationSpec,
    RouterAdvertSpec,
    RouterGatewaySpec,
    RouterPortSpec,
    RouterSpec,
    SubnetSpec,
    TunnelSpec,
    UnderlaySpec,
    UpstreamSpec,
)
from .models import Instance, Network, Node, Router, RouterInterface, Subnet
from .scheduling import network_nodes, serves_dhcp

# The simulated fabric is one L2 segment: every node's VTEP must lie in this prefix of the others'.
FABRIC_PREFIXLEN = 16


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
        fast_ipv6=settings.NETDASH_FAST_IPV6,
    )


@cache
def driver() -> HostDriver:
    """This process's host driver (it keeps no per-network state, so one instance serves every job)."""
    return LinuxHostDriver(host_config())


@cache
def fabric_driver() -> HostDriver:
    """A driver under ``NETDASH_FABRIC_PREFIX``, for the fabric only: simulated nodes on one machine each have a
    prefix of their own (a network's segment namespace exists once per node) and share one fabric."""
    return LinuxHostDriver(HostConfig(prefix=settings.NETDASH_FABRIC_PREFIX,
                                      state_dir=settings.NETDASH_STATE_DIR.resolve()))


def names() -> Names:
    """Kernel names for this node's prefix: the driver's own (the one naming module, bound to settings)."""
    return driver().names


def subnet_tag(subnet_id: int) -> str:
    """dnsmasq tag of a subnet: stable across renames and restarts."""
    return f"s{subnet_id}"


def _routed_subnet_ids(network: Network) -> set[int]:
    """The network's IPv6 subnets attached to a router. Reads ``subnets__router_interface`` (prefetched by
    ``convergence.load_networks``: a query per network made a batch's cost grow with its size)."""
    return {s.pk for s in network.subnets.all() if s.ip_version == 6 and _has_router_interface(s)}


def _has_router_interface(subnet: Subnet) -> bool:
    try:
        return subnet.router_interface is not None
    except RouterInterface.DoesNotExist:
        return False


def _server_addresses(network: Network, node: str) -> tuple[dict[int, str], dict[int, tuple[str, ...]]]:
    """This node's DHCP address per subnet id, and the other servers' (HA DHCP); both empty with one server.

    The node's server is the one the database gives it; a node with none (a single-node install whose node was
    renamed, or jobs run before the rows existed) answers as the first server, as every network did before HA.
    Reads ``dhcp_servers__addresses`` (prefetched by ``convergence.load_networks``).
    """
    servers = sorted(network.dhcp_servers.all(), key=lambda s: s.rank)
    if len(servers) < 2:
        return {}, {}
    subnets = {s.pk: s.dhcp_address for s in network.subnets.all()}

    def addresses(server) -> dict[int, str]:
        return subnets if server.rank == 0 else {a.subnet_id: a.address for a in server.addresses.all()}

    mine = next((s for s in servers if s.node == node), servers[0])
    peers: dict[int, list[str]] = {}
    for server in servers:
        if server is not mine:
            for subnet_id, address in addresses(server).items():
                peers.setdefault(subnet_id, []).append(address)
    return addresses(mine), {k: tuple(v) for k, v in peers.items()}


def network_spec(network: Network, node: str | None = None) -> NetworkSpec:
    """What the network's segment and ``node``'s dnsmasq (default: this node's) should look like right now; a
    node with no DHCP server of the network gets its segment only.

    A routed IPv6 subnet's RAs come from its router (Neutron: the RA mode says who advertises), so the network's
    dnsmasq gets no RA mode for it and only answers DHCPv6."""
    node = node or settings.NETDASH_NODE
    if not serves_dhcp(network, node):  # a node hosting only instances or routers: the segment alone
        return NetworkSpec(kernel_id=network.kernel_id, subnets=(), reservations=())
    routed = _routed_subnet_ids(network)
    own, peers = _server_addresses(network, node)
    subnets = tuple(
        SubnetSpec(
            cidr=s.cidr,
            gateway=s.gateway,
            dhcp_address=own.get(s.pk, s.dhcp_address),
            peer_dhcp_addresses=peers.get(s.pk, ()),
            dns_servers=tuple(s.dns_nameservers or ()),
            domain=s.domain_name or None,
            lease_seconds=s.lease_seconds,
            enable_dhcp=s.enable_dhcp,
            tag=subnet_tag(s.pk),
            ipv6_ra_mode=None if s.pk in routed else s.ipv6_ra_mode or None,
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
    return NetworkSpec(kernel_id=network.kernel_id, subnets=subnets, reservations=tuple(reservations),
                       ha=len(network.dhcp_servers.all()) > 1)


def node_kernel_id(node: Node) -> str:
    """A node's kernel id (its underlay's names): its row id in hex, since node names need not be hex."""
    return format(node.pk, "x")


def tunnel_spec(network: Network, node: str | None = None) -> TunnelSpec | None:
    """The network's VXLAN port on ``node`` (default: this node) with a flood entry for every other node the
    network is present on that has a VTEP (the database as Neutron's l2population); None when ``node`` has no
    VTEP or no row (no overlay: the network stays on one node). This node without ``NETDASH_NODE_VTEP``: None
    without a query (a one-node install pays nothing for the overlay)."""
    if node is None and settings.NETDASH_NODE_VTEP is None:
        return None
    nodes = {n.name: n for n in Node.objects.filter(name__in=network_nodes(network) | {node or settings.NETDASH_NODE})}
    me = nodes.get(node or settings.NETDASH_NODE)
    if me is None or me.vtep_address is None or network.vni is None:
        return None
    peers = tuple(n.vtep_address for n in nodes.values() if n.pk != me.pk and n.vtep_address)
    return TunnelSpec(network.kernel_id, network.vni, node_kernel_id(me), me.vtep_address, peers,
                      host_device=host_underlay_device())


def host_underlay_device() -> str | None:
    """The host interface VXLAN runs over with ``NETDASH_UNDERLAY=host`` (a deployment); None: the simulated
    underlay (tests, demo, bench). Every node of a real deployment names its own in its own settings."""
    return settings.NETDASH_UNDERLAY_DEVICE if settings.NETDASH_UNDERLAY == "host" else None


def check_underlay() -> None:
    """At agent start: a host underlay's device name is one the kernel and a command line accept (settings has
    checked the mode and that device and VTEP are given); raises HostInputError with the fix otherwise."""
    device = host_underlay_device()
    if device is not None:
        check_ifname(device, "NETDASH_UNDERLAY_DEVICE")


def underlay_spec(node: str | None = None) -> UnderlaySpec | None:
    """``node``'s (default: this node's) underlay on the fabric, or None when it has no VTEP (no overlay).
    With a real-host underlay: the host's interface, no fabric (nothing to create)."""
    row = Node.objects.filter(name=node or settings.NETDASH_NODE).exclude(vtep_address=None).first()
    if row is None:
        return None
    if (device := host_underlay_device()) is not None:
        return UnderlaySpec(node_kernel_id(row), row.vtep_address, FABRIC_PREFIXLEN, "", "", host_device=device)
    fabric_ns, fabric_bridge = fabric_driver().fabric()
    return UnderlaySpec(node_kernel_id(row), row.vtep_address, FABRIC_PREFIXLEN, fabric_ns, fabric_bridge)


DHCPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless")  # SLAAC needs no client: the kernel configures itself


def instance_spec(instance: Instance) -> InstanceSpec:
    """The instance's namespace and the DHCP clients its subnets need (udhcpc for v4, dhcpcd for DHCPv6)."""
    subnets = [instance.subnet] + ([instance.ipv6_subnet] if instance.ipv6_subnet_id else [])
    return InstanceSpec(
        kernel_id=instance.kernel_id,
        network_kernel_id=instance.network.kernel_id,
        mac=instance.mac_address,
        hostname=instance.hostname,
        dhcpv4=any(s.ip_version == 4 for s in subnets),
        dhcpv6=any(s.ip_version == 6 and s.ipv6_address_mode in DHCPV6_MODES for s in subnets),
    )


def router_spec(router: Router) -> RouterSpec:
    """What the router's namespace and NAT table should look like right now.

    One port per attached network (named after its first interface row) holding the gateway address of each of
    the network's attached subnets; floating IPs are those associated to instances behind this router on its
    external network. Reads ``interfaces__subnet__network`` and ``gateway_floating_ips`` as prefetched by
    ``router_convergence.load_router``.
    """
    by_network: dict[str, tuple[str, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
                                list[RouterAdvertSpec]]] = {}
    for interface in sorted(router.interfaces.all(), key=lambda i: i.pk):
        subnet = interface.subnet
        port = by_network.setdefault(subnet.network.kernel_id, (interface.kernel_id, [], []))
        port[1].append(ipaddress.ip_interface(f"{subnet.gateway}/{subnet.ip_network.prefixlen}"))
        if subnet.ipv6_ra_mode:  # the router advertises it; address mode alone: an outside router would
            port[2].append(RouterAdvertSpec(prefix=subnet.ip_network, ra_mode=subnet.ipv6_ra_mode))
    ports = tuple(RouterPortSpec(kernel_id=kid, network_kernel_id=net, addresses=tuple(addresses),
                                 adverts=tuple(adverts))
                  for net, (kid, addresses, adverts) in by_network.items())
    gateway = None
    floating: tuple[FloatingIPSpec, ...] = ()
    if router.external_network_id and router.external_ip:
        ext = router.external_subnet
        ext6 = external_subnet6(router.external_network)
        gateway = RouterGatewaySpec(network_kernel_id=router.external_network.kernel_id,
                                    address=ipaddress.ip_interface(f"{router.external_ip}/{ext.ip_network.prefixlen}"),
                                    gateway=ext.gateway or None,
                                    address6=None if ext6 is None else router_external_ipv6(router, ext6),
                                    gateway6=None if ext6 is None else ext6.gateway)
        attached = {i.subnet_id for i in router.interfaces.all()}
        floating = tuple(FloatingIPSpec(floating_ip=f.address, fixed_ip=f.instance.ip_address)
                         for f in sorted(router.gateway_floating_ips, key=lambda f: f.pk)
                         if f.instance is not None and f.instance.subnet_id in attached and f.instance.ip_address
                         and f.instance.status != ObjectStatus.DELETING)
    return RouterSpec(kernel_id=router.kernel_id, ports=ports, gateway=gateway, floating_ips=floating)


def upstream_spec(network: Network) -> UpstreamSpec | None:
    """The simulated upstream of an external network that asks for one: it holds the first subnet's gateway (the
    routers' default route), so the routers' external addresses are on its link and it needs no route at all."""
    if not (network.external and network.simulated_upstream):
        return None
    subnet = next((s for s in sorted(network.subnets.all(), key=lambda s: s.pk) if s.gateway), None)
    if subnet is None:
        return None
    ext6 = external_subnet6(network)
    if ext6 is None:
        return UpstreamSpec(network_kernel_id=network.kernel_id,
                            address=ipaddress.ip_interface(f"{subnet.gateway}/{subnet.ip_network.prefixlen}"))
    routes = []
    for router in Router.objects.filter(external_network=network, external_ip__isnull=False).exclude(
            status=ObjectStatus.DELETING).prefetch_related("interfaces__subnet"):
        via = router_external_ipv6(router, ext6).ip
        routes += [(i.subnet.ip_network, via) for i in router.interfaces.all() if i.subnet.ip_version == 6]
    return UpstreamSpec(network_kernel_id=network.kernel_id,
                        address=ipaddress.ip_interface(f"{subnet.gateway}/{subnet.ip_network.prefixlen}"),
                        address6=ipaddress.ip_interface(f"{ext6.gateway}/{ext6.ip_network.prefixlen}"),
                        routes6=tuple(routes))


def external_subnet6(network: Network) -> Subnet | None:
    """The external network's IPv6 subnet with a gateway (the upstream holds it), or None: no routed IPv6 out."""
    return next((s for s in sorted(network.subnets.all(), key=lambda s: s.pk) if s.ip_version == 6 and s.gateway),
                None)


def router_external_ipv6(router: Router, subnet: Subnet) -> ipaddress.IPv6Interface:
    """The router's address on the external IPv6 subnet, derived rather than allocated: interface id
    ``1:<kernel id>`` (kernel ids are unique), clear of the low addresses a gateway or instances take."""
    net = subnet.ip_network
    host = (1 << 32) | int(router.kernel_id, 16)
    return ipaddress.IPv6Interface(f"{net.network_address + host}/{net.prefixlen}")
