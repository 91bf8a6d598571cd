"""The host driver: plan, ensure, remove and scan networks and instances.

Every ``ensure_*`` builds the operation list (:mod:`.ops`) from a spec and applies it
convergently, so it can be re-run after any partial failure, crash, or objects removed
behind our back. Every ``remove_*`` tolerates already-gone objects. Teardown order: stop
processes (verified by pid file + cmdline + namespace inode), delete the namespaces (the
kernel frees their devices asynchronously; deleting a bridge explicitly costs ~60 ms),
remove state files.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import dnsmasq as dm
from . import netns
from .config import HostConfig
from .dhcp_client import InstanceLease, UdhcpcCommand, read_lease
from .errors import HostError
from .leases import Lease, read_leases
from .naming import Names, check_kernel_id
from .ops import (
    AddrAdd,
    LinkAddBridge,
    LinkUp,
    MakeDir,
    NetnsAdd,
    Op,
    RunDnsmasq,
    RunUdhcpc,
    Session,
    VethAdd,
    WriteFile,
    apply_all,
    client_starting,
    forget_started,
    transcript,
    wait_gone,
)
from .specs import InstanceSpec, NetworkSpec

PROGRAMS = ("dnsmasq", "udhcpc")


@dataclass(frozen=True)
class NetworkState:
    """What ``ensure_network`` left running."""

    kernel_id: str
    seg_ns: str
    dhcp_ns: str | None
    dhcp_interface: str | None
    dnsmasq_pid: int | None


@dataclass(frozen=True)
class InstanceState:
    """What ``ensure_instance`` left running and the lease the instance holds (None = still trying)."""

    kernel_id: str
    ns: str
    udhcpc_pid: int | None
    lease: InstanceLease | None


@dataclass
class NetworkHost:
    """A network as found on the host by :meth:`HostDriver.scan_host`."""

    seg_ns: bool = False
    dhcp_ns: bool = False
    dnsmasq_pid: int | None = None
    state_dir: bool = False


@dataclass
class InstanceHost:
    """An instance as found on the host by :meth:`HostDriver.scan_host`."""

    ns: bool = False
    udhcpc_pid: int | None = None
    network: str | None = None
    state_dir: bool = False


@dataclass
class HostState:
    """Everything with our prefix on the host; input for reconcile."""

    networks: dict[str, NetworkHost] = field(default_factory=dict)
    instances: dict[str, InstanceHost] = field(default_factory=dict)
    routers: set[str] = field(default_factory=set)
    # dnsmasq/udhcpc processes in our namespaces that no pid file accounts for
    stray_pids: dict[str, list[int]] = field(default_factory=dict)


def _rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def _procs_by_ns(inodes: dict[int, str]) -> dict[str, list[tuple[int, str]]]:
    """(pid, program) of dnsmasq/udhcpc processes per namespace name, found via /proc."""
    found: dict[str, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        name = inodes.get(ino)
        if name is None:
            continue
        argv = dm.cmdline(int(entry))
        if not argv:
            continue
        prog = os.path.basename(argv[0])
        if prog == "busybox" and len(argv) > 1:
            prog = argv[1]
        if prog in PROGRAMS:
            found.setdefault(name, []).append((int(entry), prog))
    return found


def _kill_left_in(ns_names: Iterable[str]) -> None:
    """SIGKILL every process still inside these namespaces (we name them, so they are ours) until none is left.

    Why: a DHCP client started without waiting may not have written its pid file yet, or may be forking its
    daemon at that moment; the pid file then misses it, and once the namespace is unmounted it lives on in a
    nameless namespace no scan can name (the soak test found udhcpc processes left after deleting everything).
    One /proc pass per batch.
    """
    inodes = {ino for ino in (netns.inode(name) for name in ns_names) if ino is not None}
    for _ in range(20):  # a process may fork while we kill its parent: look again until the namespaces are empty
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes and dm.cmdline(int(entry)):
                        pids.append(int(entry))
                except OSError:
                    continue
        if not pids:
            return
        for pid in pids:
            dm.kill(pid, signal.SIGKILL)
        for pid in pids:
            wait_gone(pid)


def _lost_procs(state_dir: Path, named: set[int]) -> list[int]:
    """dnsmasq/udhcpc processes started with our state dir in their argv whose namespace has no name any more."""
    marker = str(state_dir)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = dm.cmdline(int(entry))
        if not argv or not any(marker in a for a in argv):
            continue
        prog = os.path.basename(argv[0])
        if prog == "busybox" and len(argv) > 1:
            prog = argv[1]
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        if prog in PROGRAMS and ino not in named:
            found.append(int(entry))
    return found


class HostDriver:
    """The only code that touches the kernel or spawns dnsmasq/udhcpc. Not thread-safe per id."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.names = Names(config)

    # -- planning (pure) -------------------------------------------------------------------
    def dnsmasq_command(self, spec: NetworkSpec) -> dm.DnsmasqCommand:
        """The dnsmasq argv description for ``spec``."""
        n, nid = self.names, spec.kernel_id
        return dm.command_for(
            spec, binary=self.config.dnsmasq, interface=n.dhcp_dev(nid), pid_file=n.dnsmasq_pid(nid),
            lease_file=n.leases(nid), hosts_file=n.hosts(nid), opts_file=n.opts(nid), log_file=n.dnsmasq_log(nid),
        )

    def plan_network(self, spec: NetworkSpec) -> list[Op]:
        """Operations realising ``spec``: segment bridge, DHCP namespace, files, dnsmasq."""
        n, nid = self.names, spec.kernel_id
        seg, br = n.seg_ns(nid), n.bridge(nid)
        ops: list[Op] = [NetnsAdd(seg), LinkAddBridge(seg, br)]
        if not spec.dhcp_subnets:
            return ops
        dhcp, dev = n.dhcp_ns(nid), n.dhcp_dev(nid)
        ops += [
            MakeDir(n.net_dir(nid)),
            WriteFile(n.hosts(nid), dm.render_hosts(spec)),
            WriteFile(n.opts(nid), dm.render_opts(spec)),
            NetnsAdd(dhcp),
            VethAdd(seg, n.dhcp_port(nid), dhcp, dev, master=br),
            LinkUp(dhcp, "lo"),
            LinkUp(dhcp, dev),
        ]
        ops += [AddrAdd(dhcp, dev, str(s.dhcp_address), s.cidr.prefixlen) for s in spec.dhcp_subnets]
        ops.append(RunDnsmasq(dhcp, self.dnsmasq_command(spec)))
        return ops

    def udhcpc_command(self, spec: InstanceSpec) -> UdhcpcCommand:
        """The udhcpc argv description for ``spec``."""
        n, iid = self.names, spec.kernel_id
        return UdhcpcCommand(
            busybox=self.config.busybox, interface=n.inst_dev(iid), hostname=spec.hostname,
            pid_file=n.udhcpc_pid(iid), lease_file=n.inst_lease(iid), resolv_file=n.resolv_conf(iid),
            log_file=n.udhcpc_log(iid),
        )

    def plan_instance(self, spec: InstanceSpec, *, wait: bool = True) -> list[Op]:
        """Operations realising ``spec``: namespace, NIC plugged into the segment, udhcpc."""
        n, iid, nid = self.names, spec.kernel_id, spec.network_kernel_id
        ns, dev = n.inst_ns(iid), n.inst_dev(iid)
        return [
            MakeDir(n.inst_dir(iid)),
            WriteFile(n.inst_network(iid), nid + "\n"),
            NetnsAdd(ns),
            VethAdd(n.seg_ns(nid), n.inst_port(iid), ns, dev, master=n.bridge(nid), peer_mac=spec.mac),
            LinkUp(ns, "lo"),
            LinkUp(ns, dev),
            RunUdhcpc(ns, self.udhcpc_command(spec), wait=wait),
        ]

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

    def ensure_network(self, spec: NetworkSpec) -> NetworkState:
        """Realise ``spec`` idempotently; reservations/options changes reload via SIGHUP."""
        n, nid = self.names, spec.kernel_id
        ops = self.plan_network(spec)  # renders (and re-validates) everything before any write
        self._check_state_dir()
        with Session() as s:
            apply_all(ops, s)
        if not spec.dhcp_subnets:
            self._stop_dnsmasq([nid], wait=True)
            netns.remove(n.dhcp_ns(nid))
            return NetworkState(nid, n.seg_ns(nid), None, None, None)
        pid = dm.live_pid(n.dnsmasq_pid(nid), n.dhcp_ns(nid), "dnsmasq")
        if pid is None:
            raise HostError(f"dnsmasq for network {nid} is not running; see {n.dnsmasq_log(nid)}")
        return NetworkState(nid, n.seg_ns(nid), n.dhcp_ns(nid), n.dhcp_dev(nid), pid)

    def ensure_instance(self, spec: InstanceSpec, *, wait: bool = True) -> InstanceState:
        """Realise ``spec`` idempotently; returns once udhcpc holds a lease or went to background.

        ``wait=False`` returns once the client is started (``lease`` is then usually None): see ``RunUdhcpc``.
        """
        n, iid, nid = self.names, spec.kernel_id, spec.network_kernel_id
        if not netns.exists(n.seg_ns(nid)):
            raise HostError(f"network {nid} is not realised (namespace {n.seg_ns(nid)} missing); ensure it first")
        ops = self.plan_instance(spec, wait=wait)
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with Session() as s:
            apply_all(ops, s)
        return InstanceState(iid, n.inst_ns(iid), self.udhcpc_pid(iid), self.instance_lease(iid))

    def refresh_network(self, spec: NetworkSpec) -> bool:
        """Fast path of :meth:`ensure_network` for a network that is already up; False: call ``ensure_network``.

        "Up" means both namespaces exist and dnsmasq runs in the DHCP namespace with exactly this spec's argv.
        Then only the reservation/option files can differ: they are replaced atomically and dnsmasq gets a
        SIGHUP if one changed. No netlink socket is opened (a full ensure opens two, ~1.5 ms each, and walks
        every device), which is what a job that adds one instance to a live network needs.
        """
        n, nid = self.names, spec.kernel_id
        if not spec.dhcp_subnets or not netns.exists(n.seg_ns(nid)) or not netns.exists(n.dhcp_ns(nid)):
            return False
        pid = self.dnsmasq_pid(nid)
        if pid is None or dm.cmdline(pid) != self.dnsmasq_command(spec).argv():
            return False
        hosts, opts = dm.render_hosts(spec), dm.render_opts(spec)  # validates before any write
        changed = dm.write_atomic(n.hosts(nid), hosts)
        changed = dm.write_atomic(n.opts(nid), opts) or changed
        if changed:
            dm.kill(pid, signal.SIGHUP)
        return True

    def instance_running(self, spec: InstanceSpec) -> bool:
        """True when the instance's namespace exists and its DHCP client runs there with this spec's argv (it
        renews by itself): :meth:`ensure_instance` would change nothing a quick look can see."""
        n, iid = self.names, spec.kernel_id
        if not netns.exists(n.inst_ns(iid)):
            return False
        command = self.udhcpc_command(spec)
        if client_starting(command.pid_file):
            return True  # still leasing in its first process (see ops.client_starting)
        pid = self.udhcpc_pid(iid)
        return pid is not None and dm.cmdline(pid) == command.argv()

    # -- queries ---------------------------------------------------------------------------
    def dnsmasq_pid(self, net_id: str) -> int | None:
        """Live dnsmasq pid of the network (verified), or None."""
        return dm.live_pid(self.names.dnsmasq_pid(net_id), self.names.dhcp_ns(net_id), "dnsmasq")

    def udhcpc_pid(self, inst_id: str) -> int | None:
        """Live udhcpc pid of the instance (verified), or None."""
        return dm.live_pid(self.names.udhcpc_pid(inst_id), self.names.inst_ns(inst_id), "udhcpc")

    def network_leases(self, net_id: str) -> list[Lease]:
        """The network's leases as dnsmasq recorded them."""
        return read_leases(self.names.leases(net_id))

    def instance_lease(self, inst_id: str) -> InstanceLease | None:
        """The lease the instance currently holds, as its DHCP client recorded it."""
        return read_lease(self.names.inst_lease(inst_id))

    def renew_instance(self, inst_id: str) -> None:
        """Ask the instance's udhcpc to renew now (SIGUSR1), e.g. after a reservation change."""
        pid = self.udhcpc_pid(inst_id)
        if pid is None:
            raise HostError(f"instance {inst_id} has no running DHCP client")
        dm.kill(pid, signal.SIGUSR1)

    def wait_instance_lease(
        self, inst_id: str, pred: Callable[[InstanceLease], bool] | None = None, timeout: float = 5.0
    ) -> InstanceLease | None:
        """Poll the instance lease file until ``pred(lease)`` holds (default: any lease)."""
        deadline = time.monotonic() + timeout
        while True:
            lease = self.instance_lease(inst_id)
            if lease is not None and (pred is None or pred(lease)):
                return lease
            if time.monotonic() > deadline:
                return lease
            time.sleep(0.01)

    # -- remove ----------------------------------------------------------------------------
    def _stop_dnsmasq(self, net_ids: Iterable[str], wait: bool) -> None:
        n = self.names
        pids = []
        for nid in net_ids:
            pid = self.dnsmasq_pid(nid) or dm.stale_pid(n.dnsmasq_pid(nid), n.dhcp_ns(nid), "dnsmasq")
            if pid is not None and dm.kill(pid, signal.SIGTERM):
                pids.append(pid)
        if wait:
            # Waiting (< 1 ms each) means a recreated network never races an exiting dnsmasq.
            for pid in pids:
                wait_gone(pid)

    def remove_instance(self, inst_id: str, *, release: bool = True) -> None:
        """Stop the DHCP client (releasing the lease), delete the namespace and state."""
        self.remove_instances([inst_id], release=release)

    def remove_instances(self, inst_ids: Iterable[str], *, release: bool = True) -> None:
        """Batch :meth:`remove_instance`: signal all clients first, then wait once."""
        ids = [check_kernel_id(i) for i in inst_ids]
        n = self.names
        pids = []
        for iid in ids:
            pid = self.udhcpc_pid(iid)
            # udhcpc -R sends DHCPRELEASE on SIGTERM; SIGKILL when the network goes anyway.
            if pid is not None and dm.kill(pid, signal.SIGTERM if release else signal.SIGKILL):
                pids.append(pid)
            stale = dm.stale_pid(n.udhcpc_pid(iid), n.inst_ns(iid), "udhcpc")
            if stale is not None and dm.kill(stale, signal.SIGKILL):
                pids.append(stale)
        for pid in pids:
            wait_gone(pid)
        _kill_left_in([n.inst_ns(iid) for iid in ids])
        for iid in ids:
            forget_started(n.udhcpc_pid(iid))
            netns.remove(n.inst_ns(iid))
            _rmtree(n.inst_dir(iid))
            _rmtree(n.resolv_dir(iid))

    def instances_of(self, net_ids: Iterable[str]) -> list[str]:
        """Instance ids whose state says they are plugged into one of ``net_ids``."""
        wanted = set(net_ids)
        out = []
        for kind, iid in self._state_entries():
            if kind != "inst":
                continue
            try:
                nid = self.names.inst_network(iid).read_text().strip()
            except OSError:
                continue
            if nid in wanted:
                out.append(iid)
        return out

    def remove_network(self, net_id: str) -> None:
        """Remove the network, its dnsmasq, state, and the instances plugged into it."""
        self.remove_networks([net_id])

    def remove_networks(self, net_ids: Iterable[str]) -> None:
        """Batch removal: stop every process first, then delete namespaces, then files."""
        ids = [check_kernel_id(i) for i in net_ids]
        n = self.names
        self.remove_instances(self.instances_of(ids), release=False)
        self._stop_dnsmasq(ids, wait=True)
        _kill_left_in([n.dhcp_ns(nid) for nid in ids])
        for nid in ids:
            netns.remove(n.dhcp_ns(nid))
            netns.remove(n.seg_ns(nid))
            _rmtree(n.net_dir(nid))

    # -- scan & reconcile ------------------------------------------------------------------
    def _state_entries(self) -> list[tuple[str, str]]:
        try:
            entries = os.listdir(self.config.state_dir)
        except FileNotFoundError:
            return []
        return [p for p in (self.names.parse_ns(e) for e in entries) if p is not None]

    def scan_host(self) -> HostState:
        """Our namespaces, processes and state dirs as they are on the host right now."""
        n = self.names
        st = HostState()
        inodes: dict[int, str] = {}
        for name in netns.list_names():
            parsed = n.parse_ns(name)
            if parsed is None:
                continue
            ino = netns.inode(name)
            if ino is not None:
                inodes[ino] = name
            kind, kid = parsed
            if kind == "seg":
                st.networks.setdefault(kid, NetworkHost()).seg_ns = True
            elif kind == "qdhcp":
                st.networks.setdefault(kid, NetworkHost()).dhcp_ns = True
            elif kind == "inst":
                st.instances.setdefault(kid, InstanceHost()).ns = True
            else:
                st.routers.add(kid)
        for kind, kid in self._state_entries():
            if kind == "qdhcp":
                st.networks.setdefault(kid, NetworkHost()).state_dir = True
            elif kind == "inst":
                ih = st.instances.setdefault(kid, InstanceHost())
                ih.state_dir = True
                try:
                    ih.network = n.inst_network(kid).read_text().strip() or None
                except OSError:
                    pass
        for kid, nh in st.networks.items():
            nh.dnsmasq_pid = self.dnsmasq_pid(kid)
        for kid, ih in st.instances.items():
            ih.udhcpc_pid = self.udhcpc_pid(kid)
        known = {nh.dnsmasq_pid for nh in st.networks.values()} | {ih.udhcpc_pid for ih in st.instances.values()}
        for name, procs in _procs_by_ns(inodes).items():
            stray = [pid for pid, _ in procs if pid not in known]
            if stray:
                st.stray_pids[name] = stray
        # Ours by argv but in a namespace that was deleted (behind our back, or mid-start): nothing else finds them.
        lost = _lost_procs(self.config.state_dir, set(inodes))
        if lost:
            st.stray_pids["(deleted namespace)"] = lost
        return st

    def remove_orphans(self, wanted_networks: Iterable[str], wanted_instances: Iterable[str]) -> HostState:
        """Remove every network/instance with our prefix not in the wanted sets.

        Also kills stray dnsmasq/udhcpc processes in our namespaces (e.g. a pid file lost in
        a crash). Returns what was found before removal.
        """
        st = self.scan_host()
        nets, insts = set(wanted_networks), set(wanted_instances)
        for pids in st.stray_pids.values():
            for pid in pids:
                dm.kill(pid, signal.SIGKILL)
        self.remove_instances([i for i in st.instances if i not in insts], release=False)
        self.remove_networks([i for i in st.networks if i not in nets])
        for rid in st.routers:
            netns.remove(self.names.router_ns(rid))
        return st
