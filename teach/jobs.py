"""RQ jobs of the teaching tools; they run in the host agent (root), never in the web process.

- ``inspect_target``: read one namespace's kernel state (pyroute2) and return it as a plain dict (RQ result);
- ``inspect_router``: the same for a router's namespace, plus its NAT rules with counters and conntrack entries;
- ``routed_lab_notice``: reach the upstream from both instances of a routed lab and read both routers' conntrack;
- ``ipv6_lab_observe``: read one mode's instance of a three-modes lab (RA flags, addresses, client, lease rows);
- ``failover_lab_observe``: read the failover lab's network on this node (segment, VXLAN, dnsmasq, the client);
- ``failover_lab_fail`` / ``failover_lab_nudge``: crash the failed server's dnsmasq here, then (on the instance's
  node) ask the client once to renew;
- ``run_diagnostic``: run one validated diagnostic and stream its output lines to a channel-layer group;
- ``shell_session``: open a pty shell in a namespace and relay it over the channel layer (a session thread);
- ``lab_sweep``: end the expired labs (enqueued by the agent every ``NETDASH_AGENT_PERIODIC_JOBS`` interval).

Jobs take ids, reload, and re-derive every kernel name and argv themselves: nothing from the browser reaches the
host except through ``diagnostics.validate``.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import threading
import time
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from tenants.choices import LeaseState, ObjectStatus
from tenants.host import UPSTREAM_ECHO_PORT, HostError, InstanceLease6, inspect_namespace, netns
from tenants.host.inspect import NamespaceInfo
from tenants.host.inspect import flows as host_flows
from tenants.host.inspect import inspect_router as inspect_router_ns
from tenants.host.ra_probe import address_origin
from tenants.hostspecs import driver, host_config, instance_spec, names
from tenants.models import DhcpServer, Instance, Network
from tenants.queue import enqueue_now
from tenants.router_convergence import load_router
from tenants.scheduling import instance_node, instances_on

from . import diagnostics, hostside, ipv6_lab, routed_lab, selectors, services
from .ipv6_state import instance_ipv6
from .models import DiagnosticRun, Lab, RunStatus, ShellSession, TargetKind
from .targets import Target, load

log = logging.getLogger(__name__)

UDP_SERVICES = {67: "DHCP server (dnsmasq)", 68: "DHCP client", 53: "DNS (dnsmasq)", 547: "DHCPv6 server"}
ROLE_LABELS = {"bridge": "bridge", "dhcp": "DHCP interface", "dhcp_port": "DHCP port", "inst": "instance NIC",
               "inst_port": "instance port", "router_port": "router port (qr)",
               "gateway_port": "gateway port (qg)"}  # keyed by naming.DEV_LETTERS roles


# --- inspector ----------------------------------------------------------------------------------------------

def _role(ifname: str | None) -> str | None:
    """What a device is for, from its name (the naming module's letter after the prefix)."""
    if ifname == "lo":
        return "loopback"
    return ROLE_LABELS.get(names().role(ifname) or "")


def _peers(target: Target) -> dict[str, str]:
    """Device → "peer@namespace" for the veth pairs of this target (derived from the same names the driver uses)."""
    n, net = names(), target.network
    if target.kind == TargetKind.INSTANCE:
        iid = target.instance.kernel_id
        return {n.inst_dev(iid): f"{n.inst_port(iid)}@{n.seg_ns(net.kernel_id)}"}
    if target.kind == TargetKind.DHCP:
        return {n.dhcp_dev(net.kernel_id): f"{n.dhcp_port(net.kernel_id)}@{n.seg_ns(net.kernel_id)}"}
    peers = {n.dhcp_port(net.kernel_id): f"{n.dhcp_dev(net.kernel_id)}@{n.dhcp_ns(net.kernel_id)}"}
    for instance in net.instances.all():
        peers[n.inst_port(instance.kernel_id)] = f"{n.inst_dev(instance.kernel_id)}@{n.inst_ns(instance.kernel_id)}"
    return peers


def _namespace_rows(info: NamespaceInfo, peers: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The inspector's rows of one namespace: devices by name, each with its role and veth peer."""
    by_index = {link.index: link.name for link in info.links}
    return {
        "links": [
            {"name": li.name, "mac": li.mac, "state": li.state, "up": li.up, "kind": li.kind, "role": _role(li.name),
             "master": by_index.get(li.master) if li.master else None, "peer": peers.get(li.name)}
            for li in info.links
        ],
        "addresses": [
            {"dev": by_index.get(a.index), "dev_role": _role(by_index.get(a.index)), "address": a.address,
             "prefixlen": a.prefixlen, "origin": address_origin(a.address, a.prefixlen)}
            for a in info.addresses
        ],
        "routes": [
            {"dst": r.dst, "gateway": r.gateway, "dev": by_index.get(r.oif), "dev_role": _role(by_index.get(r.oif)),
             "scope": r.scope}
            for r in info.routes
        ],
        "neighbours": [
            {"dev": by_index.get(nb.index), "ip": nb.ip, "mac": nb.mac, "state": nb.state} for nb in info.neighbours
        ],
        "udp": [
            {"local": u.local, "port": u.port, "service": UDP_SERVICES.get(u.port, "")}
            for u in sorted(info.udp, key=lambda u: (u.port, u.local))
        ],
    }


def inspect_target(kind: str, object_id: int) -> dict[str, Any]:
    """Kernel state of the target's namespace: links, addresses, routes, neighbours, UDP listeners, processes."""
    target = load(kind, object_id)
    if target is None:
        return {"error": "this object no longer exists"}
    ns = target.namespace
    try:
        info = inspect_namespace(ns)
    except HostError as exc:
        return {"namespace": ns, "error": f"{exc} (is the network realised?)"}
    out: dict[str, Any] = {"namespace": ns, "inode": netns.inode(ns), "error": None, "read_at": time.time(),
                           **_namespace_rows(info, _peers(target))}
    d = driver()
    out["lease"] = []
    out["processes"] = []
    if kind == TargetKind.INSTANCE:
        if instance_spec(target.instance).dhcpv4:  # an IPv6-only instance runs no udhcpc
            out["processes"].append({"program": "udhcpc", "pid": d.udhcpc_pid(target.instance.kernel_id)})
        out["ipv6"] = instance_ipv6(target.instance)
        if out["ipv6"] and out["ipv6"]["client"]:
            out["processes"].append(out["ipv6"]["client"])
        lease = d.instance_lease(target.instance.kernel_id)
        if lease is not None:
            out["lease"] = [
                {"field": "address", "value": str(lease.interface)},
                {"field": "DHCP server", "value": str(lease.server_id or "")},
                {"field": "router", "value": str(lease.router or "")},
                {"field": "DNS", "value": " ".join(str(x) for x in lease.dns_servers)},
                {"field": "domain", "value": lease.domain or ""},
                {"field": "lease time", "value": f"{lease.lease_seconds} s" if lease.lease_seconds else ""},
            ]
        lease6 = d.instance_lease6(target.instance.kernel_id)
        if lease6 is not None:  # what dhcpcd holds: an address when stateful, options only when stateless
            out["lease"] += [
                {"field": "DHCPv6 address",
                 "value": " ".join(str(a) for a in lease6.addresses) or "none (stateless: options only)"},
                {"field": "DHCPv6 DNS", "value": " ".join(str(x) for x in lease6.dns_servers)},
                {"field": "DHCPv6 reply", "value": lease6.reason},
            ]
    elif kind == TargetKind.DHCP:
        out["processes"].append({"program": "dnsmasq", "pid": d.dnsmasq_pid(target.network.kernel_id)})
    return out


def _router_peers(router) -> dict[str, str]:
    """Router device → "peer@segment namespace": one veth per attached network, one into the external network."""
    n = names()
    peers = {}
    for interface in sorted(router.interfaces.all(), key=lambda i: i.pk):
        net = interface.subnet.network.kernel_id
        port = interface.kernel_id
        peers.setdefault(n.router_port(port), f"{n.router_port_peer(port)}@{n.seg_ns(net)}")
    if router.external_network_id:
        peers[n.gateway_port(router.kernel_id)] = (f"{n.gateway_port_peer(router.kernel_id)}@"
                                                   f"{n.seg_ns(router.external_network.kernel_id)}")
    return peers


def inspect_router(router_id: int) -> dict[str, Any]:
    """Kernel state of a router's namespace: links, addresses, routes, neighbours, NAT rules with their packet and
    byte counters, and the connection-tracking entries (what SNAT and floating IPs have translated)."""
    router = load_router(router_id)
    if router is None:
        return {"error": "this router no longer exists"}
    ns = names().router_ns(router.kernel_id)
    try:
        info = inspect_router_ns(ns)
    except HostError as exc:
        return {"namespace": ns, "error": f"{exc} (is the router realised?)"}
    return {"namespace": ns, "inode": netns.inode(ns), "error": None, "read_at": time.time(),
            **_namespace_rows(info.namespace, _router_peers(router)),
            "nat": [asdict(r) for r in info.nat], "conntrack": [asdict(f) for f in info.conntrack]}


# --- labs -------------------------------------------------------------------------------------------------

def routed_lab_notice(lab_id: int) -> dict[str, Any]:
    """The routed lab, observed now: each instance reaches the upstream (which answers with the source address it
    saw), then each router's conntrack flows to the upstream are read; the findings come from those alone."""
    lab = Lab.objects.filter(pk=lab_id).first()
    if lab is None:
        return {"facts": {}, "error": "this lab no longer exists"}
    n, observed = names(), []
    try:
        for side in selectors.lab_sides(lab):
            if side.instance is None or side.router is None:
                return {"facts": {}, "error": "The lab is still being built."}
            seen = hostside.echo_probe(n.inst_ns(side.instance.kernel_id), selectors.LAB_UPSTREAM,
                                       UPSTREAM_ECHO_PORT)
            flows = [asdict(f) for f in host_flows(driver().router_conntrack(side.router.kernel_id))
                     if f.dst == selectors.LAB_UPSTREAM and f.dport == str(UPSTREAM_ECHO_PORT)]
            observed.append(routed_lab.Observation(side.tenant.slug, side.instance.ip_address or "",
                                                   side.router.name, side.router.external_ip or "", seen, flows))
    except HostError as exc:
        return {"facts": {}, "error": str(exc)}
    return {"facts": routed_lab.facts(observed, selectors.LAB_UPSTREAM, UPSTREAM_ECHO_PORT), "error": ""}


def ipv6_lab_observe(instance_id: int, mode: str) -> dict[str, Any]:
    """One mode's instance of a three-modes lab, observed now on its node: the RA it receives (solicited off the
    wire), its NIC's IPv6 addresses with their origin, its DHCPv6 client and its active lease rows — an
    ``ipv6_lab.Observation`` as a dict, or ``{"error": …}``."""
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None:
        return {"error": "this instance no longer exists"}
    n = names()
    try:
        info = inspect_namespace(n.inst_ns(instance.kernel_id))
        v6 = instance_ipv6(instance) or {}
    except HostError as exc:
        return {"error": str(exc)}
    nic = {li.index for li in info.links if li.name == n.inst_dev(instance.kernel_id)}
    addresses = [{"address": a.address, "prefixlen": a.prefixlen, "origin": address_origin(a.address, a.prefixlen)}
                 for a in info.addresses if a.index in nic]  # the NIC's only: lo's ::1/128 is no DHCPv6 address
    leases = instance.leases.filter(state=LeaseState.ACTIVE).order_by("ip_address")
    return asdict(ipv6_lab.Observation(
        mode, instance.hostname, instance.mac_address, instance.ip_address or "", v6.get("ra"),
        [a for a in addresses if a["origin"] is not None], v6.get("client"),
        list(leases.values_list("ip_address", flat=True))))


def failover_lab_observe(network_id: int) -> dict[str, Any]:
    """The failover lab's network on this node, read now: its segment namespace, its VXLAN port (VNI, flood list,
    MACs learned behind it), its dnsmasq, and, where the instance runs, the client (lease file, NIC addresses,
    udhcpc's event log) — a ``failover_lab.NodeObservation`` as a dict, or ``{"error": …}``."""
    network = Network.objects.filter(pk=network_id).first()
    if network is None:
        return {"error": "this network no longer exists"}
    n, d, kid = names(), driver(), network.kernel_id
    try:
        tunnel = d.tunnel_state(kid)
        out: dict[str, Any] = {"node": settings.NETDASH_NODE, "segment": netns.exists(n.seg_ns(kid)),
                               "tunnel": tunnel.as_dict() if tunnel is not None else None,
                               "dnsmasq_pid": d.dnsmasq_pid(kid), "client": None, "error": ""}
        instance = (instances_on(settings.NETDASH_NODE).filter(network=network)
                    .exclude(status=ObjectStatus.DELETING).order_by("pk").first())
        if instance is not None:
            out["client"] = _client_observation(instance)
    except HostError as exc:
        return {"error": str(exc)}
    return out


def _client_observation(instance: Instance) -> dict[str, Any]:
    """What the instance's DHCP client holds: its lease file, the IPv4 addresses on its NIC, udhcpc's events."""
    n, d, iid = names(), driver(), instance.kernel_id
    lease = d.instance_lease(iid)
    addresses: list[str] = []
    if netns.exists(n.inst_ns(iid)):
        info = inspect_namespace(n.inst_ns(iid))
        nic = {li.index for li in info.links if li.name == n.inst_dev(iid)}
        addresses = [a.address for a in info.addresses if a.index in nic and ":" not in a.address]
    return {
        "udhcpc_pid": d.udhcpc_pid(iid), "addresses": addresses,
        "lease": None if lease is None else {"ip": str(lease.ip), "server_id": str(lease.server_id or ""),
                                             "obtained": lease.obtained},
        "events": [asdict(e) for e in d.instance_client_events(iid)],
    }


def failover_lab_fail(server_id: int) -> str:
    """Crash (SIGKILL) this node's dnsmasq of a server the database marks failed, then ask the instance's node to
    nudge its client once: enqueued from here so the nudge cannot overtake the kill (another node's queue)."""
    server = DhcpServer.objects.select_related("network").filter(pk=server_id).first()
    if server is None or server.failed_at is None:
        return "not failed (restored meanwhile, or gone)"
    if server.node != settings.NETDASH_NODE:
        return f"the server runs on {server.node}, not here"
    pid = driver().crash_dnsmasq(server.network.kernel_id)
    log.info("failover lab: SIGKILLed dnsmasq %s of network %s", pid, server.network_id)
    instance = (Instance.objects.filter(network=server.network).exclude(status=ObjectStatus.DELETING)
                .select_related("network").order_by("pk").first())
    if instance is not None:
        enqueue_now("teach.jobs.failover_lab_nudge", instance.pk, node=instance_node(instance))
    return f"killed dnsmasq {pid}" if pid is not None else "no dnsmasq was running"


def failover_lab_nudge(instance_id: int) -> str:
    """Ask the instance's udhcpc once to renew (SIGUSR1). Once only: a second SIGUSR1 while a renew is pending
    makes busybox udhcpc deconfigure (seen with 50 ms nudges, bench/multinode_rows.py)."""
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None:
        return "gone"
    driver().renew_instance(instance.kernel_id)
    return "nudged"


def lab_sweep() -> int:
    """End every expired lab: ``tenant_delete`` enqueues the teardown of its networks on their nodes."""
    return services.lab_sweep()


# --- diagnostics --------------------------------------------------------------------------------------------

def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(group, {"type": "teach.diag", **message})


def run_diagnostic(run_id: int) -> int | None:
    """Run one diagnostic and stream its lines to the run's group; record the outcome."""
    run = DiagnosticRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    target = load(run.kind, run.object_id)
    group, seq = run.group, 0

    def line(text: str, stream: str = "out") -> None:
        nonlocal seq
        seq += 1
        _send(group, {"event": "line", "run": run.pk, "seq": seq, "stream": stream, "text": text[:2000]})

    DiagnosticRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    code: int | None = None
    try:
        if target is None:
            raise HostError("this object no longer exists")
        args = diagnostics.validate(run.action, run.args, run.kind)  # again: the agent trusts no stored input
        ns = target.namespace
        clients = _clients(target) if run.action == "renew" else ()
        line("$ " + diagnostics.shell_equivalent(run.action, args, ns, busybox=host_config().busybox,
                                                 clients=clients), "cmd")
        argv = diagnostics.argv(run.action, args, busybox=host_config().busybox)
        if argv is not None:
            code = hostside.run_streaming(ns, argv, line)
        elif run.action == "renew":
            code = _renew(target, clients, line)
        elif run.action == "dnsmasq_log":
            code = _log_tail(target, line)
    except (HostError, diagnostics.DiagnosticError, OSError) as exc:
        line(str(exc), "err")
        code = None
    status = RunStatus.DONE if code == 0 else RunStatus.FAILED
    DiagnosticRun.objects.filter(pk=run.pk).update(status=status, exit_code=code, finished_at=timezone.now())
    _send(group, {"event": "done", "run": run.pk, "exit_code": code, "status": status})
    return code


RENEW6_TIMEOUT = 15.0  # a fresh dhcpcd waits ~1 s before its SOLICIT and leased in ~2 s (MEASURED.md); loaded


def _clients(target: Target) -> tuple[str, ...]:
    """The DHCP clients the instance runs: udhcpc with an IPv4 subnet, dhcpcd with a DHCPv6 one (neither: SLAAC)."""
    spec = instance_spec(target.instance)
    return tuple(c for c, runs in (("udhcpc", spec.dhcpv4), ("dhcpcd", spec.dhcpv6)) if runs)


def _renew(target: Target, clients: tuple[str, ...], line) -> int:
    """Renew with every client the instance runs and report what each holds afterwards; 0 when all renewed."""
    if not clients:
        line("SLAAC needs no DHCP client: the address follows the router advertisements", "err")
        return 1
    d = driver()
    iid = target.instance.kernel_id
    before, before6 = d.instance_lease(iid), d.instance_lease6(iid)
    pid4, pid6 = d.udhcpc_pid(iid), d.dhcpcd_pid(iid)
    d.renew_instance(iid)
    code = 0
    if "udhcpc" in clients:
        line(f"sent SIGUSR1 to udhcpc (pid {pid4}): renewing")
        lease = d.wait_instance_lease(
            iid, lambda lease: before is None or lease.obtained != before.obtained, timeout=5.0
        )
        if lease is None:
            line("no IPv4 lease yet", "err")
            code = 1
        else:
            line(f"holding {lease.interface} from DHCP server {lease.server_id} (lease {lease.lease_seconds} s)")
    if "dhcpcd" in clients:
        line(f"sent SIGALRM to dhcpcd (pid {pid6}): released; a fresh dhcpcd solicits")
        lease6 = _wait_lease6(iid, None if before6 is None else before6.obtained)
        if lease6 is None:
            line("no DHCPv6 reply yet", "err")
            code = 1
        else:
            held = " ".join(str(a) for a in lease6.addresses) or "no address (stateless: options only)"
            dns = " ".join(str(a) for a in lease6.dns_servers) or "none"
            line(f"dhcpcd (pid {d.dhcpcd_pid(iid)}) {lease6.reason}: holding {held}, DNS {dns}")
    return code


def _wait_lease6(iid: str, obtained_before: float | None) -> InstanceLease6 | None:
    """The instance's DHCPv6 result once dhcpcd records a new one (None on timeout)."""
    d = driver()
    deadline = time.monotonic() + RENEW6_TIMEOUT
    while True:
        lease6 = d.instance_lease6(iid)
        if lease6 is not None and lease6.obtained != obtained_before:
            return lease6
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _log_tail(target: Target, line) -> int:
    path = names().dnsmasq_log(target.network.kernel_id)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            lines = f.read().decode(errors="replace").splitlines()[-diagnostics.LOG_TAIL_LINES:]
    except FileNotFoundError:
        line("dnsmasq has not written a log yet", "err")
        return 1
    for text in lines:
        line(text)
    return 0


# --- shell --------------------------------------------------------------------------------------------------

def shell_session(session_id: int, reply_channel: str) -> str:
    """Start the session's shell in a thread of the agent and return at once (the worker stays free).

    The agent re-checks that shells are enabled *here*: the web process's setting alone is not enough.
    """
    reap_stale_shells()
    session = ShellSession.objects.filter(pk=session_id, ended_at=None).first()
    if session is None:
        return "gone"
    if not settings.NETDASH_SHELL_ENABLED:
        _end_session(session.pk, "refused: shells are disabled on this node", "")
        async_to_sync(get_channel_layer().send)(reply_channel, {"type": "shell.closed", "reason": "disabled"})
        return "disabled"
    target = load(session.kind, session.object_id)
    if target is None or target.namespace != session.namespace:
        _end_session(session.pk, "refused: namespace gone", "")
        async_to_sync(get_channel_layer().send)(reply_channel, {"type": "shell.closed", "reason": "gone"})
        return "gone"
    relay = ShellRelay(session.pk, session.namespace, reply_channel, settings.NETDASH_SHELL_SECONDS)
    thread = threading.Thread(target=relay.run, name=f"shell-{session.pk}", daemon=True)
    thread.start()
    SESSIONS[session.pk] = relay
    return "started"


def reap_stale_shells() -> list[int]:
    """Kill shells whose relay is gone (the agent restarted mid-session) and close their rows.

    A shell runs in its own session, so it outlives an agent that dies; the next shell request cleans up. A pid
    is killed only if it still runs as the unprivileged user inside the session's namespace (pids are reused).
    """
    reaped = []
    for session in ShellSession.objects.filter(ended_at=None).exclude(pk__in=list(SESSIONS)):
        if session.pid and _is_our_shell(session.pid, session.namespace):
            try:
                os.killpg(session.pid, 9)
            except ProcessLookupError:
                pass
            reaped.append(session.pid)
        if session.pid or session.started_at < timezone.now() - timedelta(seconds=settings.NETDASH_SHELL_SECONDS):
            _end_session(session.pk, "ended: the agent restarted", session.keystrokes)
    return reaped


def _is_our_shell(pid: int, ns: str) -> bool:
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return False
    uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
    nobody = str(hostside.user_id(hostside.ShellCommand(ns).user))
    return uid_line.split()[1:2] == [nobody] and netns.proc_in_ns(pid, netns.inode(ns))


SESSIONS: dict[int, ShellRelay] = {}  # live sessions of this agent process (tests stop them by id)
KEYSTROKE_LIMIT = 256 * 1024


def _end_session(session_id: int, reason: str, typed: str) -> None:
    ShellSession.objects.filter(pk=session_id).update(ended_at=timezone.now(), end_reason=reason[:200],
                                                      keystrokes=typed[:KEYSTROKE_LIMIT])


class ShellRelay:
    """One shell: pty ↔ channel layer. Runs its own event loop in a daemon thread of the agent.

    Output goes to the consumer's channel (``reply_channel``); input, resize and close come to a channel of our
    own, announced to the consumer in ``shell.ready``. Everything typed is kept and saved to the session row
    every few seconds and at the end. The shell is killed when the time limit passes, the consumer says close,
    or the shell exits.
    """

    FLUSH_SECONDS = 2.0

    def __init__(self, session_id: int, ns: str, reply_channel: str, limit: float) -> None:
        self.session_id, self.ns, self.reply_channel, self.limit = session_id, ns, reply_channel, limit
        self.typed: list[str] = []
        self.stop = threading.Event()
        self.reason = ""
        self.channel = ""  # ours, for input; set once the shell runs

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("shell session %s failed", self.session_id)
        finally:
            SESSIONS.pop(self.session_id, None)
            close_old_connections()

    async def _db(self, fn, *args) -> None:
        await sync_to_async(fn, thread_sensitive=False)(*args)

    async def _main(self) -> None:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)  # our own: this thread has its own loop
        try:
            shell = hostside.spawn_shell(hostside.ShellCommand(self.ns))
        except Exception as exc:
            await self._db(_end_session, self.session_id, f"could not start: {exc}", "")
            await layer.send(self.reply_channel, {"type": "shell.closed", "reason": f"could not start: {exc}"})
            return
        await self._db(lambda: ShellSession.objects.filter(pk=self.session_id).update(pid=shell.pid))
        me = self.channel = await layer.new_channel("teach-shell.")
        await layer.send(self.reply_channel, {"type": "shell.ready", "agent": me, "limit": self.limit})
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[bytes | None] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(shell.master_fd, 65536)
            except BlockingIOError:
                return
            except OSError:  # EIO: the shell and everything on its pty exited
                data = b""
            if not data:
                loop.remove_reader(shell.master_fd)
            out.put_nowait(data or None)

        loop.add_reader(shell.master_fd, readable)
        tasks = [asyncio.create_task(c) for c in (self._pump(layer, out), self._inbox(layer, me, shell),
                                                   self._flush())]
        try:
            done, _ = await asyncio.wait(tasks, timeout=self.limit, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                self.reason = f"time limit ({self.limit:.0f} s) reached"
        finally:
            self.stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                loop.remove_reader(shell.master_fd)
            except (ValueError, OSError):
                pass
            await asyncio.to_thread(shell.kill)
            reason = self.reason or "ended"
            await self._db(_end_session, self.session_id, reason, "".join(self.typed))
            try:
                await layer.send(self.reply_channel, {"type": "shell.closed", "reason": reason})
            finally:
                await layer.close_pools()

    async def _pump(self, layer, out: asyncio.Queue) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            data = await out.get()
            if data is None:
                self.reason = self.reason or "the shell exited"
                return
            # Coalesce what arrived meanwhile: one message per burst, not per read.
            while not out.empty() and len(data) < 65536:
                more = out.get_nowait()
                if more is None:
                    out.put_nowait(None)
                    break
                data += more
            await layer.send(self.reply_channel, {"type": "shell.output", "data": decoder.decode(data)})

    async def _inbox(self, layer, me: str, shell: hostside.PtyProcess) -> None:
        while True:
            msg = await layer.receive(me)
            kind = msg.get("type")
            if kind == "shell.input":
                data = str(msg.get("data", ""))[:4096]
                self.typed.append(data)
                try:
                    os.write(shell.master_fd, data.encode())
                except OSError:
                    self.reason = self.reason or "the shell exited"
                    return
            elif kind == "shell.resize":
                try:
                    shell.resize(max(2, min(int(msg["rows"]), 500)), max(10, min(int(msg["cols"]), 500)))
                except (KeyError, TypeError, ValueError, OverflowError, OSError):
                    pass
            elif kind == "shell.close":
                self.reason = str(msg.get("reason") or "closed by the user")[:200]
                return

    async def _flush(self) -> None:
        """Save the keystrokes so far: a crashed agent still leaves the log of what was typed."""
        while True:
            await asyncio.sleep(self.FLUSH_SECONDS)
            typed = "".join(self.typed)[:KEYSTROKE_LIMIT]
            await self._db(lambda t=typed: ShellSession.objects.filter(pk=self.session_id).update(keystrokes=t))
            # The consumer marks a hang-up in the row: covers a close message that could not reach us.
            hung_up = await sync_to_async(
                lambda: ShellSession.objects.filter(pk=self.session_id).exclude(end_reason="").exists(),
                thread_sensitive=False)()
            if hung_up:
                self.reason = self.reason or "browser disconnected"
                return

    def request_stop(self, reason: str = "stopped by the agent") -> None:
        """Thread-safe: end the session from outside (tests, agent shutdown)."""
        if self.channel:
            async_to_sync(get_channel_layer().send)(self.channel, {"type": "shell.close", "reason": reason})
