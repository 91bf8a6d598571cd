"""Every kernel name and state path the driver uses, derived in ONE place.

Why one module: the names are the only link between the database and the kernel after a
crash. ``scan_host`` parses them back, teardown derives them again, and the inspector shows
them, so they must come from a single function each and never be typed twice.

Layout for a network ``N`` and an instance ``I`` (kernel ids: 1-8 lowercase hex chars)::

    namespace {p}seg-N      L2 segment: bridge {p}bN, ports {p}qN (DHCP) and {p}vI (instances)
    namespace {p}qdhcp-N    DHCP side: veth {p}dN (peer {p}qN), dnsmasq bound to it
    namespace {p}inst-I     instance: veth {p}iI (peer {p}vI), udhcpc on it

    namespace {p}qrouter-R  router R: nftables table ``netdash``; per port P a veth {p}rP (Neutron's qr-, here)
                            with peer {p}sP on that network's bridge; the gateway veth {p}gR (qg-, here) with
                            peer {p}hR on the external network's bridge
    namespace {p}upstream-N the simulated outside world on external network N: veth {p}uN (peer {p}wN on the
                            bridge), a TEST-NET address, no default route, the echo service

Overlay (several nodes, :mod:`.kinds.overlay`)::

    namespace {p}fabric-F   the simulated fabric joining the nodes' underlays: bridge {p}bF, ports {p}fN
    namespace {p}ul-N       node N's underlay: veth {p}yN (peer {p}fN in the fabric) holding the VTEP; the UDP
                            socket of every VXLAN device {p}xNET created here stays here, the device itself is
                            created straight into the segment namespace {p}seg-NET

    state_dir/{p}qdhcp-N/   dnsmasq.pid leases hosts opts addn-hosts (HA DHCP) dnsmasq.log
    state_dir/{p}inst-I/    udhcpc.pid lease network udhcpc.log udhcpc.events run/ lib/ (dhcpcd's /run, /var/lib)
    state_dir/{p}upstream-N/  echo.pid echo.log
    state_dir/{p}qrouter-R/   ra.pid ra.log (the router's RA-only dnsmasq, when it routes IPv6)
    /etc/netns/{p}inst-I/resolv.conf   so ``ip netns exec`` lookups use the network's DNS

Device names are ``prefix + one letter + id``: at most 6 + 1 + 8 = 15 bytes = IFNAMSIZ - 1. That is why a
router's ports get one letter each, not Neutron's two-letter ``qr-``/``qg-``.

Parsing is unambiguous across prefixes: a name ``A+kind1-id`` can equal ``B+kind2-id`` (with
A a proper prefix of B) only if ``kind2`` is a suffix of ``kind1``; no kind below is a suffix
of another, and a test asserts that.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import HostConfig
from .errors import HostInputError

IFNAMSIZ = 16
KERNEL_ID_RE = re.compile(r"[0-9a-f]{1,8}")
# A host interface we did not name (the real-host underlay's): what the kernel accepts, narrowed to what is safe
# on a command line (no '/', whitespace, ':' or a leading '-'), at most IFNAMSIZ - 1 bytes.
HOST_IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,14}")

NS_KINDS = ("seg", "qdhcp", "inst", "qrouter", "upstream", "ul", "fabric")
RESERVED_NS_KINDS: tuple[str, ...] = ()  # named here, created by nothing yet (none left: every kind is built)
# One letter per device role; kept here so a new role cannot silently reuse a letter.
DEV_LETTERS = {
    "bridge": "b",
    "dhcp": "d",
    "dhcp_port": "q",
    "inst": "i",
    "inst_port": "v",
    "router_port": "r",  # a router's port to a tenant network, in the router (Neutron's qr-)
    "router_port_peer": "s",  # its peer on the tenant network's bridge
    "gateway_port": "g",  # a router's external port, in the router (Neutron's qg-)
    "gateway_port_peer": "h",  # its peer on the external network's bridge
    "upstream": "u",  # the simulated upstream's NIC
    "upstream_port": "w",  # its peer on the external network's bridge
    "vxlan": "x",  # a segment's VXLAN tunnel device (in the segment namespace, its socket in the underlay)
    "underlay": "y",  # a node's underlay veth end holding its VTEP (in the underlay namespace)
    "fabric_port": "f",  # its peer, a port of the fabric's bridge (in the fabric namespace)
}
RESOLV_ROOT = Path("/etc/netns")


def check_kernel_id(kernel_id: str) -> str:
    """Return ``kernel_id`` if it is 1-8 lowercase hex characters, else raise."""
    if not isinstance(kernel_id, str) or not KERNEL_ID_RE.fullmatch(kernel_id):
        raise HostInputError(
            f"kernel id {kernel_id!r} is invalid: use 1-8 lowercase hex characters (e.g. '1a2b3c4d')"
        )
    return kernel_id


def check_ifname(ifname: str, what: str = "interface") -> str:
    """Return ``ifname`` if it is a valid interface name of at most 15 bytes without shell-special characters."""
    if not isinstance(ifname, str) or not HOST_IFNAME_RE.fullmatch(ifname):
        raise HostInputError(f"{what} {ifname!r} is invalid: 1-15 letters, digits, '.', '_' or '-', starting with a "
                             "letter or digit (e.g. 'eth1')")
    return ifname


def _derived(factory: str, key: str, doc: str) -> Callable[[Names, str], str]:
    """A :class:`Names` method: ``factory(key, kernel_id)``, e.g. the ``seg`` namespace or the ``bridge`` device."""

    def name(self: Names, kernel_id: str) -> str:
        return getattr(self, factory)(key, kernel_id)

    name.__doc__ = doc
    return name


def _file(directory: str, name: str, doc: str) -> Callable[[Names, str], Path]:
    """A :class:`Names` method: the file ``name`` inside the directory method ``directory`` returns."""

    def path(self: Names, kernel_id: str) -> Path:
        return getattr(self, directory)(kernel_id) / name

    path.__doc__ = doc
    return path


@dataclass(frozen=True)
class Names:
    """Name factory bound to one :class:`HostConfig`."""

    config: HostConfig

    @property
    def prefix(self) -> str:
        """The configured prefix every name starts with."""
        return self.config.prefix

    # -- namespaces ---------------------------------------------------------------------
    def ns(self, kind: str, kernel_id: str) -> str:
        """Namespace name of ``kind`` (one of :data:`NS_KINDS`) for ``kernel_id``."""
        if kind not in NS_KINDS:
            raise ValueError(f"unknown namespace kind {kind!r}")
        return f"{self.prefix}{kind}-{check_kernel_id(kernel_id)}"

    seg_ns = _derived("ns", "seg", "Namespace holding the network's bridge (the L2 segment).")
    dhcp_ns = _derived("ns", "qdhcp", "Namespace holding the network's dnsmasq.")
    inst_ns = _derived("ns", "inst", "Namespace standing in for an instance (VM).")
    router_ns = _derived("ns", "qrouter", "Namespace of a router (forwarding, NAT).")
    upstream_ns = _derived("ns", "upstream", "Namespace of the simulated outside world on an external network.")
    underlay_ns = _derived("ns", "ul", "A node's VXLAN underlay namespace.")
    fabric_ns = _derived("ns", "fabric", "The simulated fabric between the nodes' underlays.")

    def parse_ns(self, name: str) -> tuple[str, str] | None:
        """``(kind, kernel_id)`` if ``name`` is one of our namespaces, else ``None``."""
        if not name.startswith(self.prefix):
            return None
        rest = name[len(self.prefix) :]
        kind, sep, kid = rest.partition("-")
        if not sep or kind not in NS_KINDS or not KERNEL_ID_RE.fullmatch(kid):
            return None
        return kind, kid

    # -- devices ------------------------------------------------------------------------
    def dev(self, role: str, kernel_id: str) -> str:
        """Device name for ``role`` (a key of :data:`DEV_LETTERS`); asserts IFNAMSIZ."""
        name = f"{self.prefix}{DEV_LETTERS[role]}{check_kernel_id(kernel_id)}"
        assert len(name.encode()) <= IFNAMSIZ - 1, name
        return name

    bridge = _derived("dev", "bridge", "The segment's bridge (in the seg namespace).")
    dhcp_dev = _derived("dev", "dhcp", "dnsmasq's interface (in the qdhcp namespace).")
    dhcp_port = _derived("dev", "dhcp_port", "Bridge-side peer of the DHCP interface (in the seg namespace).")
    inst_dev = _derived("dev", "inst", "The instance's NIC (in the inst namespace).")
    inst_port = _derived("dev", "inst_port", "Bridge-side peer of the instance NIC (in the seg namespace).")
    router_port = _derived("dev", "router_port", "A router's port to a tenant network (in the router namespace).")
    router_port_peer = _derived("dev", "router_port_peer", "Bridge-side peer of a router port (in the seg namespace).")
    gateway_port = _derived("dev", "gateway_port", "A router's external port (in the router namespace).")
    gateway_port_peer = _derived("dev", "gateway_port_peer",
                                 "Bridge-side peer of a router's external port (in the external seg namespace).")
    upstream_dev = _derived("dev", "upstream", "The simulated upstream's NIC (in the upstream namespace).")
    upstream_port = _derived("dev", "upstream_port", "Bridge-side peer of the upstream's NIC (in the seg namespace).")
    vxlan = _derived("dev", "vxlan", "The segment's VXLAN device (in the seg namespace).")
    underlay_dev = _derived("dev", "underlay", "The node's VTEP device (in its underlay namespace).")
    fabric_port = _derived("dev", "fabric_port", "A node's port on the fabric bridge (in the fabric namespace).")

    def role(self, ifname: str | None) -> str | None:
        """The role (a key of :data:`DEV_LETTERS`) of one of our device names, else None."""
        if not ifname or not ifname.startswith(self.prefix):
            return None
        rest = ifname[len(self.prefix) :]
        if not rest or not KERNEL_ID_RE.fullmatch(rest[1:]):
            return None
        return next((role for role, letter in DEV_LETTERS.items() if letter == rest[0]), None)

    # -- state paths --------------------------------------------------------------------
    def net_dir(self, net_id: str) -> Path:
        """State directory of a network's dnsmasq (named like its namespace)."""
        return self.config.state_dir / self.dhcp_ns(net_id)

    def inst_dir(self, inst_id: str) -> Path:
        """State directory of an instance's DHCP client."""
        return self.config.state_dir / self.inst_ns(inst_id)

    def upstream_dir(self, net_id: str) -> Path:
        """State directory of a simulated upstream's echo service."""
        return self.config.state_dir / self.upstream_ns(net_id)

    def router_dir(self, router_id: str) -> Path:
        """State directory of a router's RA daemon."""
        return self.config.state_dir / self.router_ns(router_id)

    def resolv_dir(self, inst_id: str) -> Path:
        """``ip netns exec`` bind-mounts files from here over /etc."""
        return RESOLV_ROOT / self.inst_ns(inst_id)

    # One file each, inside the directory above it.
    dnsmasq_pid = _file("net_dir", "dnsmasq.pid", "dnsmasq's pid file.")
    leases = _file("net_dir", "leases", "dnsmasq's lease file; survives namespace loss so instances keep their IPs.")
    hosts = _file("net_dir", "hosts", "Reservations (``--dhcp-hostsfile``).")
    opts = _file("net_dir", "opts", "DHCP options per subnet tag (``--dhcp-optsfile``).")
    addn_hosts = _file("net_dir", "addn-hosts", "Every reservation's name (``--addn-hosts``, HA DHCP only).")
    dnsmasq_log = _file("net_dir", "dnsmasq.log", "dnsmasq's log (``--log-facility``).")
    udhcpc_pid = _file("inst_dir", "udhcpc.pid", "udhcpc's pid file (its daemon rewrites it after forking).")
    inst_lease = _file("inst_dir", "lease", "Lease as seen by the instance, written by our udhcpc script.")
    inst_network = _file("inst_dir", "network", "Which network the instance is plugged into (cascading removal).")
    udhcpc_log = _file("inst_dir", "udhcpc.log", "udhcpc's start-up output (script errors).")
    udhcpc_events = _file("inst_dir", "udhcpc.events",
                          "One line per udhcpc script call (time, event, address, server): deconfigs stay visible.")
    dhcpcd_run = _file("inst_dir", "run", "Bound over /run for the instance's dhcpcd (pid file, sockets, lease6).")
    dhcpcd_lib = _file("inst_dir", "lib", "Bound over /var/lib for the instance's dhcpcd (its DUID and lease).")
    echo_pid = _file("upstream_dir", "echo.pid", "The upstream echo service's pid file (written by its parent).")
    echo_log = _file("upstream_dir", "echo.log", "The upstream echo service's start-up output.")
    ra_pid = _file("router_dir", "ra.pid", "The router's RA-only dnsmasq's pid file.")
    ra_log = _file("router_dir", "ra.log", "The router's RA-only dnsmasq's log (``--log-facility``).")
    resolv_conf = _file("resolv_dir", "resolv.conf", "The instance's resolver, used by ``ip netns exec``.")
