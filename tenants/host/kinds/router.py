"""A router: namespace ``qrouter-R`` forwarding between its ports, with its NAT in one nftables table.

Like Neutron's legacy L3 agent (``neutron/agent/l3``): a veth per port into that tenant network's bridge holding
the subnets' gateway addresses (``qr``), a veth into the external network's bridge holding the router's external
address, its floating IPs as /32 and the default route (``qg``), Neutron's sysctls, and the NAT of :mod:`..nft`.
Everything it plans is convergent; :func:`prune` removes what the spec no longer names (ports, addresses,
floating IPs), and the conntrack entries of a floating IP that moved or went are deleted, so an established flow
does not keep reaching the old instance.

IPv6 is routed, never translated (:func:`plan_ipv6`): the ports hold the subnets' IPv6 gateways (``nodad``), the
namespace forwards IPv6, an RA-only dnsmasq sends the routed subnets' router advertisements (lifetime > 0, the
M/O/A flags of each subnet's ``ipv6_ra_mode``; the network's own dnsmasq then sends none for them), the gateway
port holds the external IPv6 address and the IPv6 default route, and ``table ip6 netdash`` is the filter of
:func:`..nft.render6`.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2.netlink.exceptions import NetlinkError

from .. import netns, nft
from ..errors import HostError
from ..interface import HostScan, RouterFound
from ..naming import Names
from ..ops import (
    AddrAdd,
    LinkUp,
    MakeDir,
    NetnsAdd,
    Op,
    RouteReplace,
    Session,
    Sysctl,
    VethAdd,
    shell_command,
    shell_exec_in,
)
from ..process import Daemon, c_env, kill_all_in, run_in
from ..specs import RouterAdvertSpec, RouterSpec

NS_KIND = "qrouter"
NFT = "/usr/sbin/nft"
CONNTRACK = "/usr/sbin/conntrack"
# Neutron's namespace sysctls (neutron/agent/l3/namespaces.py); rp_filter stays 0, the default in a new namespace.
SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.netfilter.nf_conntrack_tcp_be_liberal", "1"),
)
# With IPv6: forwarding on (Neutron's namespaces.py); RAs are never accepted, the routes come from the spec.
# The ports (made after these) skip DAD, like the DHCP namespace's (kinds/dhcp.py): the RA daemon sends from a
# port's link-local address, and while that is tentative (~1-2 s after the port is made) its RAs leave with a
# global source that instances drop (RFC 4861 §6.1.2), so an instance on a freshly routed subnet waited for its
# RS retry 4 s later. The router's addresses are its own by construction (IPAM); DAD has nothing to find.
SYSCTLS6 = (
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.ipv6.conf.all.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
)
RA_START_TIMEOUT = 10.0
# dnsmasq's range keyword per Neutron ipv6_ra_mode, for the flags it puts in the RA (MEASURED.md): ra-only A;
# ra-stateless A+O; static M (a static range with no hosts: the router's dnsmasq leases nothing, and its DHCPv6
# port is closed by the ip6 table anyway).
RA_RANGE_MODE = {"slaac": "ra-only", "dhcpv6-stateless": "ra-stateless", "dhcpv6-stateful": "static"}
RA_INTERVAL = 30  # seconds between unsolicited RAs (dnsmasq answers router solicitations at once)
RA_LIFETIME = 1800  # the router lifetime: > 0, the instances' default route points at this router


@dataclass(frozen=True)
class AnnouncedAddr(AddrAdd):
    """An address followed by a gratuitous ARP when it is new, so neighbours' caches follow a moved address."""

    busybox: str = "/usr/bin/busybox"

    def _arping(self) -> list[str]:
        return [self.busybox, "arping", "-U", "-c", "1", "-I", self.dev, self.address]

    def shell(self) -> str:
        return f"{super().shell()} && {shell_command(['ip', 'netns', 'exec', self.ns, *self._arping()])}"

    def apply(self, s: Session) -> None:
        if self.add(s):
            run_in(self.ns, self._arping())  # best effort, like Neutron's: a lost GARP only delays the neighbours


@dataclass(frozen=True)
class NftApply(Op):
    """The router's table, replaced in one ``nft -f`` transaction unless the live one already equals it."""

    ns: str
    text: str
    family: str = "ip"  # "ip6" for the IPv6 filter table

    def shell(self) -> str:
        lines = nft.transaction(self.text, self.family).splitlines()
        return ("printf '%s\\n' " + " ".join(shell_command([x]) for x in lines)
                + " | " + shell_command(["ip", "netns", "exec", self.ns, "nft", "-f", "-"]))

    def apply(self, s: Session) -> None:
        if nft.canonical(listed(self.ns, self.family)) == self.text:
            return
        r = run_in(self.ns, [NFT, "-f", "-"], nft.transaction(self.text, self.family))
        if r.returncode != 0:
            raise self.fail(r.stderr.strip() or f"nft exit status {r.returncode}")


def listed(ns: str, family: str = "ip") -> str:
    """``nft list table`` of the router's table, counters included; "" when it does not exist."""
    r = run_in(ns, [NFT, "list", "table", family, nft.TABLE])
    return r.stdout if r.returncode == 0 else ""


def table(n: Names, spec: RouterSpec) -> nft.NatTable:
    """The frozen description of what the router translates."""
    gw = spec.gateway
    return nft.NatTable(
        gateway_dev=n.gateway_port(spec.kernel_id),
        external=None if gw is None else gw.address.ip,
        snat_sources=spec.subnets if spec.snat else (),
        floating_ips=tuple((f.floating_ip, f.fixed_ip) for f in spec.floating_ips),
    )


def plan(n: Names, spec: RouterSpec, busybox: str, dnsmasq: str) -> list[Op]:
    """Namespace and sysctls, a veth per port with the gateway addresses, the external port with its address,
    floating IPs and default route, then the NAT table, then what routes IPv6 (:func:`plan_ipv6`)."""
    rid, ns = spec.kernel_id, n.router_ns(spec.kernel_id)
    sysctls = SYSCTLS + (SYSCTLS6 if forwards_ipv6(spec) else ())
    ops: list[Op] = [NetnsAdd(ns), *(Sysctl(ns, k, val) for k, val in sysctls), LinkUp(ns, "lo")]
    for p in spec.ports:
        dev, nid = n.router_port(p.kernel_id), p.network_kernel_id
        ops += [VethAdd(n.seg_ns(nid), n.router_port_peer(p.kernel_id), ns, dev, master=n.bridge(nid)),
                LinkUp(ns, dev)]
        ops += [AnnouncedAddr(ns, dev, str(a.ip), a.network.prefixlen, busybox)
                for a in p.addresses if a.version == 4]
    gw = spec.gateway
    if gw is not None:
        dev, nid = n.gateway_port(rid), gw.network_kernel_id
        ops += [VethAdd(n.seg_ns(nid), n.gateway_port_peer(rid), ns, dev, master=n.bridge(nid)),
                LinkUp(ns, dev),
                AnnouncedAddr(ns, dev, str(gw.address.ip), gw.address.network.prefixlen, busybox)]
        ops += [AnnouncedAddr(ns, dev, str(f.floating_ip), 32, busybox) for f in spec.floating_ips]
        if gw.gateway is not None:
            ops.append(RouteReplace(ns, dev, str(gw.gateway)))
    ops.append(NftApply(ns, nft.render(table(n, spec))))
    return ops + plan_ipv6(n, spec, dnsmasq)


def networks(spec: RouterSpec) -> set[str]:
    """The networks whose segments the router plugs into."""
    nets = {p.network_kernel_id for p in spec.ports}
    return nets | ({spec.gateway.network_kernel_id} if spec.gateway else set())


def prune(s: Session, n: Names, spec: RouterSpec) -> set[str]:
    """Delete the ports and addresses the spec no longer names (the peers on the bridges go with their veth);
    return the floating IPs (/32 on a gateway port) that went, whose flows must go too.

    Run before :func:`plan`'s operations: a port that moved to another network is rebuilt by its ``VethAdd``.
    """
    ns = n.router_ns(spec.kernel_id)
    wanted: dict[str, set[tuple[str, int]]] = {
        n.router_port(p.kernel_id): {(str(a.ip), a.network.prefixlen) for a in p.addresses} for p in spec.ports}
    if spec.gateway is not None:
        a = spec.gateway.address
        wanted[n.gateway_port(spec.kernel_id)] = {(str(a.ip), a.network.prefixlen)} | {
            (str(f.floating_ip), 32) for f in spec.floating_ips}
    ipr = s.ipr(ns)
    gone: set[str] = set()
    for link in ipr.get_links():
        name, idx = link.get_attr("IFLA_IFNAME"), link["index"]
        role = n.role(name)
        if role not in ("router_port", "gateway_port"):
            continue
        stale = [(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=socket.AF_INET)
                 if (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) not in wanted.get(name, set())]
        if role == "gateway_port":
            gone |= {address for address, prefixlen in stale if prefixlen == 32}
        if name not in wanted:
            _already_gone_ok(ipr.link, "del", index=idx)
            s.forget(ns, name)
            continue
        for address, prefixlen in stale:
            _already_gone_ok(ipr.addr, "del", index=idx, address=address, prefixlen=prefixlen)
    return gone


def _already_gone_ok(request: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Run a netlink delete that may race the kernel: deleting a network's segment namespace takes the veth
    peer with it, so the router's end can vanish between the dump and the delete (ENODEV), or its address with it
    (EADDRNOTAVAIL). Either way the object is gone, which is what prune wanted."""
    try:
        request(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (errno.ENODEV, errno.EADDRNOTAVAIL):
            raise


def clear_conntrack(ns: str, floating_ips: Iterable[str]) -> None:
    """Delete the flows through these floating IPs: inbound (original destination) and outbound (SNATed to it,
    so the reply's destination). ``conntrack -D`` exits 1 when there was nothing to delete."""
    for fip in floating_ips:
        for selector in ("--orig-dst", "--reply-dst"):
            r = run_in(ns, [CONNTRACK, "-D", selector, fip])
            if r.returncode not in (0, 1):
                raise HostError(f"conntrack -D {selector} {fip} in {ns} failed: {r.stderr.strip()}")


def moved(before: dict[str, str], spec: RouterSpec) -> list[str]:
    """Floating IPs the live table translated that the spec drops or points elsewhere."""
    now = {str(f.floating_ip): str(f.fixed_ip) for f in spec.floating_ips}
    return sorted(fip for fip, fixed in before.items() if now.get(fip) != fixed)


def conntrack(ns: str) -> list[str]:
    """The router's conntrack table, one flow per line."""
    r = run_in(ns, [CONNTRACK, "-L"])
    if r.returncode != 0:
        raise HostError(f"conntrack -L in {ns} failed: {r.stderr.strip()}")
    return r.stdout.splitlines()


def remove(n: Names, router_ids: Iterable[str]) -> None:
    """Delete the router namespaces: their veths (and the peers on the bridges) go with them."""
    ids = list(router_ids)
    kill_all_in([n.router_ns(rid) for rid in ids])
    for rid in ids:
        netns.remove(n.router_ns(rid))


def scan(scan: HostScan, namespaces: set[str]) -> None:
    """Record the routers found (kernel ids of the ``qrouter`` namespaces)."""
    for rid in namespaces:
        scan.routers.setdefault(rid, RouterFound()).ns = True


# -- IPv6 (routed, no NAT) -----------------------------------------------------------------------------------
def forwards_ipv6(spec: RouterSpec) -> bool:
    """Whether the router takes part in IPv6: an attached IPv6 subnet or an external IPv6 address."""
    return spec.routes_ipv6 or (spec.gateway is not None and spec.gateway.address6 is not None)


@dataclass(frozen=True)
class RaCommand:
    """The router's RA-only dnsmasq: no DNS (``--port=0``), bound to the ports that advertise, one range per
    advertised prefix (its keyword sets the flags), ``--ra-param`` per port for a non-zero router lifetime."""

    binary: str
    pid_file: Path
    log_file: Path
    adverts: tuple[tuple[str, RouterAdvertSpec], ...]  # (port device, advert), sorted
    env: dict[str, str] = field(default_factory=c_env, compare=False)

    @property
    def program(self) -> str:
        return os.path.basename(self.binary)

    def argv(self) -> list[str]:
        devs = list(dict.fromkeys(dev for dev, _ in self.adverts))
        argv = [self.binary, "--conf-file=/dev/null", "--port=0", "--no-resolv", "--no-hosts",
                "--bind-interfaces", *(f"--interface={d}" for d in devs), "--except-interface=lo",
                f"--pid-file={self.pid_file}", f"--log-facility={self.log_file}", "--enable-ra"]
        argv += [f"--ra-param={d},{RA_INTERVAL},{RA_LIFETIME}" for d in devs]
        argv += [f"--dhcp-range={a.prefix.network_address},{RA_RANGE_MODE[a.ra_mode]},{a.prefix.prefixlen}"
                 for _, a in self.adverts]
        return argv


def ra_daemon(n: Names, router_id: str, binary: str = "dnsmasq") -> Daemon:
    """The router's RA dnsmasq as the supervisor recognises it."""
    return Daemon(os.path.basename(binary), n.router_ns(router_id), n.ra_pid(router_id))


def ra_command(n: Names, spec: RouterSpec, binary: str) -> RaCommand | None:
    """The RA daemon the spec needs; None when no port advertises anything."""
    adverts = tuple(sorted(((n.router_port(p.kernel_id), a) for p in spec.ports for a in p.adverts),
                           key=lambda x: (x[0], x[1].prefix)))
    if not adverts:
        return None
    rid = spec.kernel_id
    return RaCommand(binary, n.ra_pid(rid), n.ra_log(rid), adverts)


@dataclass(frozen=True)
class RunRa(Op):
    """The RA dnsmasq with exactly this argv (a different one is restarted), or none when ``command`` is None."""

    daemon: Daemon
    command: RaCommand | None

    def shell(self) -> str:
        if self.command is None:
            return shell_command(["pkill", "-F", str(self.daemon.pid_file)]) + " || true"
        return shell_exec_in(self.daemon.ns, self.command)

    def apply(self, s: Session) -> None:
        if self.command is None:
            s.supervisor.stop([self.daemon])
            return
        if s.supervisor.running_as(self.daemon, self.command.argv()) is not None:
            return
        if not os.access(self.command.binary, os.X_OK):
            raise HostError(f"dnsmasq not installed at {self.command.binary}")
        s.supervisor.start(self.daemon, self.command, wait=True, timeout=RA_START_TIMEOUT, fail=self.fail)


def plan_ipv6(n: Names, spec: RouterSpec, dnsmasq: str) -> list[Op]:
    """The IPv6 half: gateway addresses on the ports and the external address with the default route (all
    ``nodad``: usable at once, and dnsmasq's constructor needs them), the RA daemon, the ip6 filter table.
    Nothing for a router that does not take part in IPv6 (and no RA daemon left running)."""
    rid, ns = spec.kernel_id, n.router_ns(spec.kernel_id)
    command = ra_command(n, spec, dnsmasq)
    stop_or_run: list[Op] = [RunRa(ra_daemon(n, rid, dnsmasq), command)]
    if not forwards_ipv6(spec):
        return stop_or_run
    ops: list[Op] = [MakeDir(n.router_dir(rid))]
    for p in spec.ports:
        dev = n.router_port(p.kernel_id)
        ops += [AddrAdd(ns, dev, str(a.ip), a.network.prefixlen, nodad=True) for a in p.addresses if a.version == 6]
    gw = spec.gateway
    if gw is not None and gw.address6 is not None:
        dev = n.gateway_port(rid)
        ops.append(AddrAdd(ns, dev, str(gw.address6.ip), gw.address6.network.prefixlen, nodad=True))
        if gw.gateway6 is not None:
            ops.append(RouteReplace(ns, dev, str(gw.gateway6)))
    ops += stop_or_run
    ops.append(NftApply(ns, nft.render6(nft.FilterTable6(n.gateway_port(rid))), "ip6"))
    return ops


def prune_ipv6(s: Session, n: Names, spec: RouterSpec) -> None:
    """Delete the global IPv6 addresses of the router's ports the spec no longer names (link-local ones stay);
    like :func:`prune` for IPv4, run before the plan."""
    wanted: dict[str, set[tuple[str, int]]] = {
        n.router_port(p.kernel_id): {(str(a.ip), a.network.prefixlen) for a in p.addresses if a.version == 6}
        for p in spec.ports}
    gw = spec.gateway
    if gw is not None and gw.address6 is not None:
        wanted[n.gateway_port(spec.kernel_id)] = {(str(gw.address6.ip), gw.address6.network.prefixlen)}
    ipr = s.ipr(n.router_ns(spec.kernel_id))
    for link in ipr.get_links():
        name, idx = link.get_attr("IFLA_IFNAME"), link["index"]
        if n.role(name) not in ("router_port", "gateway_port"):
            continue
        for a in ipr.get_addr(index=idx, family=socket.AF_INET6):
            have = (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
            if a["scope"] == 0 and have not in wanted.get(name, set()):
                _already_gone_ok(ipr.addr, "del", index=idx, address=have[0], prefixlen=have[1])


def remove_state(n: Names, router_ids: Iterable[str]) -> None:
    """Delete the routers' state directories (the RA daemon's pid file and log); run after :func:`remove`."""
    for rid in router_ids:
        shutil.rmtree(n.router_dir(rid), ignore_errors=True)
