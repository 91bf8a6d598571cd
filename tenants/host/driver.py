"""The Linux host driver: ensure, remove and scan networks and instances by composing the kinds.

Every ``ensure_*`` builds the operation list from a spec (:mod:`.kinds`) and applies it convergently, so it can
be re-run after any partial failure, crash, or objects removed behind our back. Every ``remove_*`` tolerates
already-gone objects. Teardown order: stop processes (verified by pid file + cmdline + namespace inode), delete
the namespaces (the kernel frees their devices asynchronously; deleting a bridge explicitly costs ~60 ms),
remove state files.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from . import netns, nft, ra_probe
from .config import HostConfig
from .dhcp_client import (
    ClientEvent,
    InstanceLease,
    InstanceLease6,
    UdhcpcCommand,
    read_client_events,
    read_lease,
    read_lease6,
)
from .dnsmasq import DnsmasqCommand
from .errors import HostError
from .inspect import TunnelInfo, inspect_tunnel
from .interface import HostScan, InstanceRealised, NetworkRealised, RouterRealised, UpstreamRealised
from .kinds import dhcp, instance, overlay, router, segment, upstream
from .leases import DnsmasqLease, read_leases
from .naming import RESERVED_NS_KINDS, Names, check_kernel_id
from .ops import Op, Session, apply_all, transcript
from .process import Supervisor, kill, processes
from .ra_probe import RouterAdvert
from .specs import InstanceSpec, NetworkSpec, RouterSpec, TunnelSpec, UnderlaySpec, UpstreamSpec

PROGRAMS = (dhcp.PROGRAM, instance.PROGRAM)


class LinuxHostDriver:
    """The only code that touches the kernel or spawns dnsmasq/udhcpc. Not thread-safe per id."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.names = Names(config)
        self.supervisor = Supervisor()

    # -- planning (pure) -------------------------------------------------------------------
    def dnsmasq_command(self, spec: NetworkSpec) -> DnsmasqCommand:
        """The dnsmasq argv description for ``spec``."""
        return dhcp.command(self.config, self.names, spec)

    def udhcpc_command(self, spec: InstanceSpec) -> UdhcpcCommand:
        """The udhcpc argv description for ``spec``."""
        return instance.command(self.config, self.names, spec)

    def plan_network(self, spec: NetworkSpec) -> list[Op]:
        """Operations realising ``spec``: segment bridge, DHCP namespace, files, dnsmasq."""
        return segment.plan(self.names, spec.kernel_id, ipv6=spec.has_ipv6) + dhcp.plan(self.config, self.names, spec)

    def plan_instance(self, spec: InstanceSpec, *, wait: bool = True) -> list[Op]:
        """Operations realising ``spec``: namespace, NIC plugged into the segment, udhcpc."""
        return instance.plan(self.config, self.names, spec, wait=wait)

    def transcript_network(self, spec: NetworkSpec) -> list[str]:
        """Shell commands equivalent to realising ``spec`` on a fresh host."""
        return transcript(self.plan_network(spec))

    def transcript_instance(self, spec: InstanceSpec) -> list[str]:
        """Shell commands equivalent to realising ``spec`` on a fresh host."""
        return transcript(self.plan_instance(spec))

    # -- ensure ----------------------------------------------------------------------------
    def _check_state_dir(self) -> None:
        # dnsmasq drops to its own user and re-reads hosts/opts on SIGHUP: it must be able
        # to traverse every parent of the state dir.
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        p = self.config.state_dir.resolve()
        for d in (p, *p.parents):
            if not os.stat(d).st_mode & stat.S_IXOTH:
                raise HostError(
                    f"state dir {p} is not reachable by the dnsmasq user: {d} lacks o+x (chmod o+x {d})"
                )

    def _apply(self, ops: list[Op]) -> None:
        with Session(self.supervisor) as s:
            apply_all(ops, s)

    def ensure_network(self, spec: NetworkSpec) -> NetworkRealised:
        """Realise ``spec`` idempotently; reservations/options changes reload dnsmasq (SIGHUP, acknowledged)."""
        n, nid = self.names, spec.kernel_id
        ops = self.plan_network(spec)  # renders (and re-validates) everything before any write
        self._check_state_dir()
        self._apply(ops)
        if not spec.dhcp_subnets:
            dhcp.stop(self.supervisor, n, [nid])
            netns.remove(n.dhcp_ns(nid))
            return NetworkRealised(nid, n.seg_ns(nid), None, None, None)
        pid = self.dnsmasq_pid(nid)
        if pid is None:
            raise HostError(f"dnsmasq for network {nid} is not running; see {n.dnsmasq_log(nid)}")
        dhcp.forget_stale_leases(n, spec)
        return NetworkRealised(nid, n.seg_ns(nid), n.dhcp_ns(nid), n.dhcp_dev(nid), pid)

    def ensure_instance(self, spec: InstanceSpec, *, wait: bool = True) -> InstanceRealised:
        """Realise ``spec`` idempotently; returns once udhcpc holds a lease or went to background.

        ``wait=False`` returns once the client is started (``lease`` is then usually None): see ``RunUdhcpc``.
        """
        n, iid, nid = self.names, spec.kernel_id, spec.network_kernel_id
        if not netns.exists(n.seg_ns(nid)):
            raise HostError(f"network {nid} is not realised (namespace {n.seg_ns(nid)} missing); ensure it first")
        ops = self.plan_instance(spec, wait=wait)
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._apply(ops)
        instance.stop_unneeded(self.supervisor, n, spec)
        return InstanceRealised(iid, n.inst_ns(iid), self.udhcpc_pid(iid), self.instance_lease(iid),
                                self.dhcpcd_pid(iid))

    def refresh_network(self, spec: NetworkSpec) -> bool:
        """Fast path of :meth:`ensure_network` for a network that is already up; False: call ``ensure_network``.

        "Up" means both namespaces exist and dnsmasq runs in the DHCP namespace with exactly this spec's argv.
        Then only the reservation/option files can differ: they are replaced atomically and dnsmasq is reloaded
        if one changed. No netlink socket is opened (a full ensure opens two, ~1.5 ms each, and walks every
        device), which is what a job that adds one instance to a live network needs.
        """
        return dhcp.refresh(self.config, self.names, spec)

    def instance_running(self, spec: InstanceSpec) -> bool:
        """True when the instance's namespace exists and its DHCP client runs there with this spec's argv (it
        renews by itself), or is still leasing in its first process: :meth:`ensure_instance` would change
        nothing a quick look can see."""
        return instance.running(self.supervisor, self.udhcpc_command(spec), self.names, spec)

    # -- overlay (several nodes) ------------------------------------------------------------
    def plan_overlay(self, underlay: UnderlaySpec, tunnels: Iterable[TunnelSpec] = ()) -> list[Op]:
        """Operations for this prefix's fabric, a node's underlay on it, and that node's tunnels."""
        ops = overlay.plan_fabric(self.names) + overlay.plan_underlay(self.names, underlay)
        return ops + [op for t in tunnels for op in overlay.plan_tunnel(self.names, t)]

    def fabric(self) -> tuple[str, str]:
        """(namespace, bridge) of this prefix's fabric, for the :class:`UnderlaySpec` of nodes joining it."""
        return overlay.fabric_names(self.names)

    def ensure_fabric(self) -> None:
        """Create the shared fabric idempotently (any node may; none owns it, reconcile never reaps it)."""
        self._apply(overlay.plan_fabric(self.names))

    def ensure_underlay(self, spec: UnderlaySpec) -> None:
        """Realise a node's underlay on an existing fabric, idempotently."""
        self._apply(overlay.plan_underlay(self.names, spec))

    def ensure_tunnel(self, spec: TunnelSpec) -> None:
        """Realise a network's VXLAN port and flood list on a node whose underlay and segment exist."""
        if not netns.exists(self.names.seg_ns(spec.network_kernel_id)):
            raise HostError(f"network {spec.network_kernel_id} is not realised; ensure it first")
        self._apply(overlay.plan_tunnel(self.names, spec))

    def remove_underlay(self, node_id: str) -> None:
        """Delete a node's underlay (and with it every VXLAN device made from it)."""
        overlay.remove_underlay(self.names, check_kernel_id(node_id))

    def remove_overlay(self) -> None:
        """Delete every underlay and the fabric of this prefix (teardown of the whole host only)."""
        for name in netns.list_names():
            parsed = self.names.parse_ns(name)
            if parsed is not None and parsed[0] == "ul":
                overlay.remove_underlay(self.names, parsed[1])
        overlay.remove_fabric(self.names)

    # -- queries ---------------------------------------------------------------------------
    def dnsmasq_pid(self, net_id: str) -> int | None:
        """Live dnsmasq pid of the network (verified), or None."""
        return dhcp.daemon(self.names, net_id).pid()

    def udhcpc_pid(self, inst_id: str) -> int | None:
        """Live udhcpc pid of the instance (verified), or None."""
        return instance.daemon(self.names, inst_id).pid()

    def dhcpcd_pid(self, inst_id: str) -> int | None:
        """Live dhcpcd (DHCPv6 client) pid of the instance (verified), or None."""
        return instance.daemon6(self.names, inst_id).pid()

    def instance_lease6(self, inst_id: str) -> InstanceLease6 | None:
        """What the instance's dhcpcd recorded of DHCPv6 (None without a DHCPv6 result)."""
        return read_lease6(instance.dhcpcd_command(self.names, inst_id).lease_file)

    def instance_router_advert(self, inst_id: str, timeout: float = 3.0) -> RouterAdvert | None:
        """The RA the instance hears when it solicits one now (M/O/A flags, router lifetime, prefixes)."""
        return ra_probe.solicit(self.names.inst_ns(inst_id), self.names.inst_dev(inst_id), timeout)

    def network_leases(self, net_id: str) -> list[DnsmasqLease]:
        """The network's leases as dnsmasq recorded them."""
        return read_leases(self.names.leases(net_id))

    def instance_lease(self, inst_id: str) -> InstanceLease | None:
        """The lease the instance currently holds, as its DHCP client recorded it."""
        return read_lease(self.names.inst_lease(inst_id))

    def crash_dnsmasq(self, net_id: str) -> int | None:
        """SIGKILL the network's dnsmasq on this node: a crash, not a stop (no lease file flushed, no release), as
        the failover lab shows it. Returns the pid killed (None: none ran). Restarting it is up to the caller's
        database (the agent's monitor restarts a dnsmasq the database still wants)."""
        pid = self.dnsmasq_pid(check_kernel_id(net_id))
        if pid is not None:
            kill(pid, signal.SIGKILL)
        return pid

    def tunnel_state(self, net_id: str) -> TunnelInfo | None:
        """The network's VXLAN port in its segment here as the kernel holds it (VNI, flood list, MACs learned
        behind it); None when this node has no segment or no tunnel for it."""
        nid = check_kernel_id(net_id)
        return inspect_tunnel(self.names.seg_ns(nid), self.names.vxlan(nid))

    def instance_client_events(self, inst_id: str) -> list[ClientEvent]:
        """What udhcpc's script recorded, oldest first: each bound, renew, deconfig, nak with address and server."""
        return read_client_events(self.names.udhcpc_events(check_kernel_id(inst_id)))

    def renew_instance(self, inst_id: str) -> None:
        """Ask the instance's DHCP clients to renew now, e.g. after a reservation change: udhcpc by SIGUSR1, dhcpcd
        by a release and a fresh SOLICIT (dnsmasq renews a DHCPv6 address that is no longer reserved: measured).

        The signal goes to the client once it runs on its own: right after its first lease the pid file still
        names its first process, which exits when the daemon forks (a renew in that window found "no running
        DHCP client" and the instance kept its old address).
        """
        udhcpc = self.supervisor.settled_pid(instance.daemon(self.names, inst_id))
        dhcpcd = self.dhcpcd_pid(inst_id)
        if udhcpc is None and dhcpcd is None:
            raise HostError(f"instance {inst_id} has no running DHCP client")
        if udhcpc is not None:
            kill(udhcpc, signal.SIGUSR1)
        if dhcpcd is not None:
            self._apply(instance.resolicit_dhcpv6(self.supervisor, self.names, inst_id))

    def wait_instance_lease(
        self, inst_id: str, pred: Callable[[InstanceLease], bool] | None = None, timeout: float = 5.0
    ) -> InstanceLease | None:
        """Poll the instance lease file until ``pred(lease)`` holds (default: any lease); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            lease = self.instance_lease(inst_id)
            if lease is not None and (pred is None or pred(lease)):
                return lease
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

    # -- remove ----------------------------------------------------------------------------
    def remove_instance(self, inst_id: str, *, release: bool = True) -> None:
        """Stop the DHCP client (releasing the lease), delete the namespace and state."""
        self.remove_instances([inst_id], release=release)

    def remove_instances(self, inst_ids: Iterable[str], *, release: bool = True) -> None:
        """Batch :meth:`remove_instance`: signal all clients first, then wait once."""
        instance.remove(self.supervisor, self.names, [check_kernel_id(i) for i in inst_ids], release=release)

    def forget_leases(self, net_id: str, leases: Iterable[tuple[str, str]]) -> int:
        """Make the network's dnsmasq drop these IPv4 ``(address, MAC)`` leases (``dhcp_release``), so an address
        IPAM hands to a new instance is offered at once; see :func:`.kinds.dhcp.forget_leases`."""
        return dhcp.forget_leases(self.names, check_kernel_id(net_id), leases)

    def instances_of(self, net_ids: Iterable[str]) -> list[str]:
        """Instance ids whose state says they are plugged into one of ``net_ids``."""
        wanted = set(net_ids)
        return [iid for iid in self._state_dirs()[instance.NS_KIND] if instance.network_of(self.names, iid) in wanted]

    def remove_network(self, net_id: str) -> None:
        """Remove the network, its dnsmasq, state, and the instances plugged into it."""
        self.remove_networks([net_id])

    def remove_networks(self, net_ids: Iterable[str]) -> None:
        """Batch removal: stop every process first, then delete namespaces, then files."""
        ids = [check_kernel_id(i) for i in net_ids]
        self.remove_instances(self.instances_of(ids), release=False)
        upstream.remove(self.supervisor, self.names, ids)
        dhcp.remove(self.supervisor, self.names, ids)
        segment.remove(self.names, ids)
        dhcp.remove_state(self.names, ids)

    # -- routers and the simulated upstream -----------------------------------------------------
    def plan_router(self, spec: RouterSpec) -> list[Op]:
        """Operations realising ``spec`` on a host where its networks are realised (see :mod:`.kinds.router`)."""
        return router.plan(self.names, spec, self.config.busybox, self.config.dnsmasq)

    def transcript_router(self, spec: RouterSpec) -> list[str]:
        """Shell commands equivalent to realising ``spec`` on a fresh host (its networks already up)."""
        return transcript(self.plan_router(spec))

    def _require_segments(self, net_ids: Iterable[str], what: str) -> None:
        for nid in sorted(net_ids):
            if not netns.exists(self.names.seg_ns(nid)):
                raise HostError(f"network {nid} is not realised (namespace {self.names.seg_ns(nid)} missing); "
                                f"ensure it before {what}")

    def ensure_router(self, spec: RouterSpec) -> RouterRealised:
        """Realise ``spec`` idempotently: removes ports, addresses and floating IPs it no longer names, rewrites
        the NAT table when the live one differs (also when it was flushed behind our back), and deletes the
        conntrack entries of floating IPs that moved or went."""
        n, rid = self.names, spec.kernel_id
        ns = n.router_ns(rid)
        self._require_segments(router.networks(spec), f"router {rid}")
        ops = self.plan_router(spec)
        live = router.listed(ns) if netns.exists(ns) else ""
        gone: set[str] = set()
        with Session(self.supervisor) as s:
            if netns.exists(ns):
                gone = router.prune(s, n, spec)
                router.prune_ipv6(s, n, spec)
            apply_all(ops, s)
        # From the live table (a FIP that moved keeps its address) and from the addresses (a table flushed
        # behind our back no longer says where a FIP pointed).
        cleared = sorted(set(router.moved(nft.floating_ips(live), spec)) | gone)
        router.clear_conntrack(ns, cleared)
        return RouterRealised(
            rid, ns, tuple(n.router_port(p.kernel_id) for p in spec.ports),
            n.gateway_port(rid) if spec.gateway else None,
            nft.canonical(live) != nft.render(router.table(n, spec)), tuple(cleared),
        )

    def remove_routers(self, router_ids: Iterable[str]) -> None:
        """Delete the routers; already-gone is fine."""
        ids = [check_kernel_id(r) for r in router_ids]
        router.remove(self.names, ids)
        router.remove_state(self.names, ids)

    def _router_ns(self, router_id: str) -> str:
        ns = self.names.router_ns(router_id)
        if not netns.exists(ns):
            raise HostError(f"router {router_id} is not realised (namespace {ns} missing)")
        return ns

    def router_ruleset(self, router_id: str) -> str:
        """The router's live NAT table as ``nft list table`` prints it, counters included ("" if missing)."""
        return router.listed(self._router_ns(router_id))

    def router_conntrack(self, router_id: str) -> list[str]:
        """The router's connection-tracking entries (``conntrack -L``), one per line."""
        return router.conntrack(self._router_ns(router_id))

    def ensure_upstream(self, spec: UpstreamSpec) -> UpstreamRealised:
        """Realise the simulated upstream on an external network idempotently (its echo service included)."""
        n, nid = self.names, spec.network_kernel_id
        self._require_segments([nid], "its upstream")
        ops = upstream.plan(n, spec)
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with Session(self.supervisor) as s:
            if netns.exists(n.upstream_ns(nid)):
                upstream.prune(s, n, spec)
            apply_all(ops, s)
        return UpstreamRealised(nid, n.upstream_ns(nid), upstream.daemon(n, nid).pid())

    def remove_upstream(self, network_kernel_id: str) -> None:
        """Stop the echo service and delete the upstream; already-gone is fine."""
        upstream.remove(self.supervisor, self.names, [check_kernel_id(network_kernel_id)])

    # -- scan & reconcile ------------------------------------------------------------------
    def _state_dirs(self) -> dict[str, set[str]]:
        """Kernel ids per kind of the state directories with our prefix."""
        found: dict[str, set[str]] = defaultdict(set)
        try:
            entries = os.listdir(self.config.state_dir)
        except FileNotFoundError:
            return found
        for kind, kid in filter(None, (self.names.parse_ns(e) for e in entries)):
            found[kind].add(kid)
        return found

    def scan_host(self) -> HostScan:
        """Our namespaces, processes and state dirs as they are on the host right now."""
        n = self.names
        scan = HostScan()
        namespaces: dict[str, set[str]] = defaultdict(set)
        inodes: dict[int, str] = {}
        for name in netns.list_names():
            parsed = n.parse_ns(name)
            if parsed is None:
                continue
            ino = netns.inode(name)
            if ino is not None:
                inodes[ino] = name
            namespaces[parsed[0]].add(parsed[1])
            if parsed[0] in RESERVED_NS_KINDS:
                scan.reserved.add(name)
        state_dirs = self._state_dirs()
        segment.scan(scan, namespaces[segment.NS_KIND])
        dhcp.scan(n, scan, namespaces[dhcp.NS_KIND], state_dirs[dhcp.NS_KIND])
        instance.scan(n, scan, namespaces[instance.NS_KIND], state_dirs[instance.NS_KIND])
        router.scan(scan, namespaces[router.NS_KIND])
        upstream.scan(n, scan, namespaces[upstream.NS_KIND], state_dirs[upstream.NS_KIND])
        known = {f.dnsmasq_pid for f in scan.networks.values()} | {f.udhcpc_pid for f in scan.instances.values()}
        # One /proc walk: ours in our namespaces but no pid file names them, and ours by argv (our state dir)
        # but in a namespace that was deleted (behind our back, or mid-start), which nothing else finds.
        # The trailing separator: a sibling state dir (another node's, ``…/state/n10`` beside ``…/state/n1``)
        # is not ours.
        marker = f"{self.config.state_dir}{os.sep}"
        for p in processes():
            if p.program not in PROGRAMS or p.pid in known:
                continue
            name = inodes.get(p.netns_inode)
            if name is not None:
                scan.stray_pids.setdefault(name, []).append(p.pid)
            elif any(marker in a for a in p.argv):
                scan.stray_pids.setdefault("(deleted namespace)", []).append(p.pid)
        return scan

    def _without_foreign(self, scan: HostScan, networks: set[str], instances: set[str]) -> HostScan:
        """``scan`` minus the networks and instances of other nodes (and the upstreams of their networks), and
        minus processes in their namespaces. Routers and reserved namespaces are carried through unchanged."""
        n = self.names
        foreign_ns = {n.seg_ns(k) for k in networks} | {n.dhcp_ns(k) for k in networks} | {
            n.upstream_ns(k) for k in networks} | {n.inst_ns(k) for k in instances}
        return HostScan(
            networks={k: f for k, f in scan.networks.items() if k not in networks},
            instances={k: f for k, f in scan.instances.items() if k not in instances},
            routers=dict(scan.routers),
            upstreams={k: f for k, f in scan.upstreams.items() if k not in networks},
            reserved=set(scan.reserved),
            stray_pids={where: pids for where, pids in scan.stray_pids.items() if where not in foreign_ns},
        )

    def remove_orphans(
        self, wanted_networks: Iterable[str], wanted_instances: Iterable[str], *,
        wanted_routers: Iterable[str] | None = None, foreign_networks: Iterable[str] = (),
        foreign_instances: Iterable[str] = (), scan: HostScan | None = None,
    ) -> HostScan:
        """Remove every network/instance with our prefix that is neither wanted nor foreign, the upstreams of
        unwanted (and not foreign) networks, and (unless ``wanted_routers`` is None, which leaves routers alone)
        unwanted routers.

        Also kills stray dnsmasq/udhcpc processes in our namespaces (e.g. a pid file lost in a crash), except in
        foreign ones. Foreign objects belong to another node's agent on this machine (same prefix, its own state
        dir): their processes look like strays from here, so they are left alone entirely. ``scan`` is what the
        caller scanned *before* it read the wanted and foreign sets, so an object another agent creates in
        between is in neither the scan nor the sets and is not mistaken for an orphan. Returns what was found
        of ours (the scan without the foreign objects) before removal.
        """
        scan = self._without_foreign(scan or self.scan_host(), set(foreign_networks), set(foreign_instances))
        nets, insts = set(wanted_networks), set(wanted_instances)
        for pids in scan.stray_pids.values():
            for pid in pids:
                kill(pid, signal.SIGKILL)
        self.remove_instances([i for i in scan.instances if i not in insts], release=False)
        self.remove_networks([i for i in scan.networks if i not in nets])
        for nid in scan.upstreams:
            if nid not in nets:
                self.remove_upstream(nid)
        if wanted_routers is not None:
            keep = set(wanted_routers)
            self.remove_routers([r for r in scan.routers if r not in keep])
        for name in scan.reserved:
            netns.remove(name)
        return scan
