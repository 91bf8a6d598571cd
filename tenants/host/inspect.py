"""Read-only view of one namespace for the namespace inspector page.

Returns plain dataclasses of str/int so the caller can serialise them without pyroute2.
UDP sockets come from /proc/thread-self/net/udp read by a thread inside the namespace:
/proc/<pid>/net reflects the reader's namespace, so no helper process is needed. A router adds its NAT rules with
their counters (``nft list table``, the very text the router kind compares with its rendering) and its
connection-tracking table (``conntrack -L``), both parsed into rows.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from pyroute2 import IPRoute

from . import netns
from .errors import HostError
from .kinds import router
from .ops import FLOOD_MAC

_OPERSTATES = {0: "UNKNOWN", 1: "NOTPRESENT", 2: "DOWN", 3: "LOWERLAYERDOWN", 4: "TESTING", 5: "DORMANT", 6: "UP"}
_NUD = {0x01: "INCOMPLETE", 0x02: "REACHABLE", 0x04: "STALE", 0x08: "DELAY", 0x10: "PROBE", 0x20: "FAILED",
        0x40: "NOARP", 0x80: "PERMANENT"}


@dataclass
class LinkInfo:
    index: int
    name: str
    mac: str | None
    state: str  # operstate
    up: bool  # admin state
    kind: str | None
    master: int | None
    peer_ifindex: int | None  # IFLA_LINK: the veth peer's index (in its own namespace)
    peer_netnsid: int | None


@dataclass
class AddrInfo:
    index: int
    address: str
    prefixlen: int


@dataclass
class RouteInfo:
    dst: str
    gateway: str | None
    oif: int | None
    scope: int


@dataclass
class NeighInfo:
    index: int
    ip: str
    mac: str | None
    state: str


@dataclass
class UdpSocket:
    local: str
    port: int
    inode: int


@dataclass
class NamespaceInfo:
    name: str
    links: list[LinkInfo] = field(default_factory=list)
    addresses: list[AddrInfo] = field(default_factory=list)
    routes: list[RouteInfo] = field(default_factory=list)
    neighbours: list[NeighInfo] = field(default_factory=list)
    udp: list[UdpSocket] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _udp_sockets() -> list[UdpSocket]:
    out = []
    for fname, family in (("udp", socket.AF_INET), ("udp6", socket.AF_INET6)):
        try:
            with open(f"/proc/thread-self/net/{fname}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            addr_hex, port_hex = parts[1].split(":")
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host byte order
            raw = b"".join(struct.pack("<I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, len(raw), 4))
            out.append(UdpSocket(socket.inet_ntop(family, raw), int(port_hex, 16), int(parts[9])))
    return out


def inspect_namespace(name: str) -> NamespaceInfo:
    """Links, addresses, routes, neighbours and UDP listeners of namespace ``name``."""
    if not netns.exists(name):
        raise HostError(f"network namespace {name} does not exist")
    info = NamespaceInfo(name)
    with IPRoute(use_socket=netns.netlink_socket(name)) as ipr:
        for link in ipr.get_links():
            li = link.get_attr("IFLA_LINKINFO")
            info.links.append(LinkInfo(
                index=link["index"],
                name=link.get_attr("IFLA_IFNAME"),
                mac=link.get_attr("IFLA_ADDRESS"),
                state=_OPERSTATES.get(link.get_attr("IFLA_OPERSTATE"), "UNKNOWN"),
                up=bool(link["flags"] & 1),
                kind=li.get_attr("IFLA_INFO_KIND") if li else None,
                master=link.get_attr("IFLA_MASTER"),
                peer_ifindex=link.get_attr("IFLA_LINK"),
                peer_netnsid=link.get_attr("IFLA_LINK_NETNSID"),
            ))
        for a in ipr.get_addr():
            info.addresses.append(AddrInfo(a["index"], a.get_attr("IFA_ADDRESS"), a["prefixlen"]))
        for r in ipr.get_routes(table=254):
            dst = r.get_attr("RTA_DST")
            info.routes.append(RouteInfo(
                dst=f"{dst}/{r['dst_len']}" if dst else "default",
                gateway=r.get_attr("RTA_GATEWAY"),
                oif=r.get_attr("RTA_OIF"),
                scope=r["scope"],
            ))
        for nb in ipr.get_neighbours():
            ip = nb.get_attr("NDA_DST")
            if ip is None:
                continue
            info.neighbours.append(NeighInfo(nb["ifindex"], ip, nb.get_attr("NDA_LLADDR"),
                                             _NUD.get(nb["state"], str(nb["state"]))))
    info.udp = netns.run_in(name, _udp_sockets)
    return info


@dataclass
class NatRule:
    """One rule of the router's NAT table with what its counter has seen."""

    chain: str
    rule: str  # as ``nft list table`` prints it, the counter left out
    packets: int
    bytes: int


@dataclass
class Flow:
    """One connection-tracking entry: the tuple as it arrived and the tuple the reply is expected on.

    When NAT applies, the two differ: a SNATed flow's reply goes to the router's external address.
    """

    proto: str
    state: str
    src: str
    dst: str
    sport: str
    dport: str
    reply_src: str
    reply_dst: str
    reply_sport: str
    reply_dport: str


@dataclass
class RouterInfo:
    """A router's namespace plus its NAT table and conntrack entries."""

    namespace: NamespaceInfo
    nat: list[NatRule] = field(default_factory=list)
    conntrack: list[Flow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHAIN_RE = re.compile(r"^\tchain (\S+) \{$")
_RULE_RE = re.compile(r"^\t\t(.*?) ?counter packets (\d+) bytes (\d+) ?(.*)$")
_TUPLE_KEYS = ("src", "dst", "sport", "dport")


def nat_rules(listed: str) -> list[NatRule]:
    """The rules of an ``nft list table`` listing that carry a counter (every rule the router renders does)."""
    rules, chain = [], ""
    for line in listed.splitlines():
        if m := _CHAIN_RE.match(line):
            chain = m.group(1)
        elif m := _RULE_RE.match(line):
            text = " ".join(part for part in (m.group(1), "counter", m.group(4)) if part)
            rules.append(NatRule(chain, text, int(m.group(2)), int(m.group(3))))
    return rules


def flows(lines: list[str]) -> list[Flow]:
    """``conntrack -L`` lines as flows; the first src/dst/sport/dport are the original tuple, the second the reply."""
    out = []
    for line in lines:
        words = line.split()
        if not words:
            continue
        pairs = [w.split("=", 1) for w in words if "=" in w]
        seen: dict[str, list[str]] = {}
        for key, value in pairs:
            if key in _TUPLE_KEYS:
                seen.setdefault(key, []).append(value)
        state = next((w for w in words[1:4] if w.isupper() and w.replace("_", "").isalpha()), "")
        orig = [seen.get(k, ["", ""])[0] for k in _TUPLE_KEYS]
        reply = [(seen.get(k, []) + ["", ""])[1] for k in _TUPLE_KEYS]
        out.append(Flow(words[0], state, *orig, *reply))
    return out


def inspect_router(name: str) -> RouterInfo:
    """Everything :func:`inspect_namespace` reads, plus the NAT rules with counters and the conntrack table."""
    info = inspect_namespace(name)
    return RouterInfo(info, nat_rules(router.listed(name)), flows(router.conntrack(name)))


@dataclass
class TunnelInfo:
    """A network's VXLAN port in its segment namespace as the kernel holds it: VNI, the flood list (head-end
    replication to the other nodes' VTEPs) and the MACs the bridge learned behind the port (hosts on other
    nodes' kernels, reached through the tunnel)."""

    dev: str
    vni: int | None
    flood: list[str] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)



def inspect_tunnel(ns: str, dev: str) -> TunnelInfo | None:
    """The VXLAN device ``dev`` in namespace ``ns`` (None: no such namespace or device). Read-only: the
    VNI from its link info, the flood entries from ``bridge fdb show dev`` (``self`` entries with a ``dst``),
    the learned MACs from the bridge's own entries on that port (``master``, not permanent)."""
    if not netns.exists(ns):
        return None
    with IPRoute(use_socket=netns.netlink_socket(ns)) as ipr:
        links = ipr.link_lookup(ifname=dev)
        if not links:
            return None
        idx = links[0]
        link = ipr.get_links(idx)[0]
        linkinfo = link.get_attr("IFLA_LINKINFO")
        data = linkinfo.get_attr("IFLA_INFO_DATA") if linkinfo else None
        vni = data.get_attr("IFLA_VXLAN_ID") if data else None
        info = TunnelInfo(dev, vni)
        for entry in ipr.fdb("dump"):
            if entry["ifindex"] != idx:
                continue
            mac, dst = entry.get_attr("NDA_LLADDR"), entry.get_attr("NDA_DST")
            if mac == FLOOD_MAC and dst:
                info.flood.append(dst)
            elif mac and mac != FLOOD_MAC and entry.get_attr("NDA_MASTER") and not entry["state"] & 0x80:
                info.learned.append(mac)
    info.flood.sort()
    info.learned.sort()
    return info
