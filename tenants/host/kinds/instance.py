"""An instance stand-in: namespace ``inst-I`` with a veth on its network's bridge carrying the instance's MAC, and
its DHCP clients on it (see :mod:`..dhcp_client` for why a separate process per instance): busybox udhcpc when the
network has a v4 subnet, dhcpcd when its v6 subnet is DHCPv6 (stateful or stateless). SLAAC needs no client."""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, field

from .. import netns
from ..config import HostConfig
from ..dhcp_client import DhcpcdCommand, UdhcpcCommand
from ..errors import HostError
from ..interface import HostScan, InstanceFound
from ..naming import Names
from ..ops import LinkUp, MakeDir, NetnsAdd, Op, Session, Sysctl, VethAdd, WriteFile, shell_exec_in
from ..process import DAEMON_PID_WAIT, PATH_ENV, Daemon, Supervisor, kill_all_in
from ..specs import InstanceSpec

NS_KIND = "inst"
PROGRAM = UdhcpcCommand.program
PROGRAM6 = DhcpcdCommand.program


def daemon(n: Names, inst_id: str) -> Daemon:
    """The instance's DHCP client as the supervisor recognises it."""
    return Daemon(PROGRAM, n.inst_ns(inst_id), n.udhcpc_pid(inst_id))


def dhcpcd_command(n: Names, inst_id: str) -> DhcpcdCommand:
    """The instance's dhcpcd: everything in it derives from the instance's names."""
    return DhcpcdCommand(interface=n.inst_dev(inst_id), run_dir=n.dhcpcd_run(inst_id), lib_dir=n.dhcpcd_lib(inst_id))


def daemon6(n: Names, inst_id: str) -> Daemon:
    """The instance's DHCPv6 client as the supervisor recognises it."""
    return Daemon(PROGRAM6, n.inst_ns(inst_id), dhcpcd_command(n, inst_id).pid_file)


def command(config: HostConfig, n: Names, spec: InstanceSpec) -> UdhcpcCommand:
    """The udhcpc argv description for ``spec``."""
    iid = spec.kernel_id
    return UdhcpcCommand(
        busybox=config.busybox, interface=n.inst_dev(iid), hostname=spec.hostname,
        pid_file=n.udhcpc_pid(iid), lease_file=n.inst_lease(iid), resolv_file=n.resolv_conf(iid),
        log_file=n.udhcpc_log(iid), events_file=n.udhcpc_events(iid),
    )


def plan(config: HostConfig, n: Names, spec: InstanceSpec, *, wait: bool) -> list[Op]:
    """Namespace, NIC plugged into the segment, dhcpcd (started first: it backgrounds at once, and its ~2 s
    exchange overlaps udhcpc's), udhcpc."""
    iid, nid = spec.kernel_id, spec.network_kernel_id
    ns, dev = n.inst_ns(iid), n.inst_dev(iid)
    v6 = dhcpcd_command(n, iid)
    clients: list[Op] = [MakeDir(v6.run_dir), MakeDir(v6.lib_dir), RunDhcpcd(ns, v6)] if spec.dhcpv6 else []
    if spec.dhcpv4:
        clients.append(RunUdhcpc(ns, command(config, n, spec), wait=wait))
    return [
        MakeDir(n.inst_dir(iid)),
        WriteFile(n.inst_network(iid), nid + "\n"),
        NetnsAdd(ns),
        *fast_ipv6(ns, enabled=config.fast_ipv6),
        VethAdd(n.seg_ns(nid), n.inst_port(iid), ns, dev, master=n.bridge(nid), peer_mac=spec.mac),
        LinkUp(ns, "lo"),
        LinkUp(ns, dev),
        *clients,
    ]


def fast_ipv6(ns: str, *, enabled: bool) -> list[Op]:
    """HostConfig.fast_ipv6: the instance's NIC (made after these) solicits routers at once and skips DAD."""
    if not enabled:
        return []
    return [Sysctl(ns, f"net.ipv6.conf.default.{key}", "0") for key in ("router_solicitation_delay", "accept_dad")]


@dataclass(frozen=True)
class RunUdhcpc(Op):
    """The instance's DHCP client; returns once it holds a lease or went to background.

    With ``wait=False`` it returns as soon as the client is started (same argv, so a later convergent run keeps
    it): the DHCP exchange (~110 ms with udhcpc, mostly kernel RCU grace periods) then overlaps the caller's
    next work, and the lease reaches the database through the lease watcher. The agent's jobs use this, so a
    burst of instances on one network is not serialised on each client's DHCP exchange.
    """

    ns: str
    command: UdhcpcCommand
    wait: bool = field(default=True, compare=False)

    def shell(self) -> str:
        return shell_exec_in(self.ns, self.command)

    def apply(self, s: Session) -> None:
        c = self.command
        d = Daemon(PROGRAM, self.ns, c.pid_file)
        if s.supervisor.running_as(d, c.argv()) is not None:
            return  # it renews by itself
        if s.supervisor.starting(d):
            return  # started moments ago, still leasing (or forking into the background)
        if not os.access(c.busybox, os.X_OK):
            raise HostError(f"busybox (for udhcpc) not installed at {c.busybox}")
        if not os.access(c.script, os.X_OK):
            raise HostError(f"udhcpc script {c.script} is not executable (chmod 755 it)")
        text = s.supervisor.start(d, c, wait=self.wait, timeout=c.first_exit_timeout, fail=self.fail)
        if not self.wait:
            return  # its first process exits once leased (or backgrounded); reaped later
        if text and c.log_file is not None:
            with open(c.log_file, "a") as f:
                f.write(text + "\n")
        # The daemon writes its own pid just after the first process exits.
        if s.supervisor.daemon_pid(d, timeout=DAEMON_PID_WAIT) is None:
            raise self.fail("udhcpc did not keep running")


@dataclass(frozen=True)
class RunDhcpcd(Op):
    """The instance's DHCPv6 client; returns once it runs in the background (its exchange follows by itself)."""

    ns: str
    command: DhcpcdCommand

    def shell(self) -> str:
        return shell_exec_in(self.ns, self.command)

    def apply(self, s: Session) -> None:
        c = self.command
        d = Daemon(PROGRAM6, self.ns, c.pid_file)
        if d.pid() is not None:
            return  # nothing in its argv can differ (see DhcpcdCommand)
        d.kill_strays()  # one no pid file names would fight the new one over the interface
        if shutil.which(PROGRAM6, path=PATH_ENV) is None:
            raise HostError("dhcpcd not installed (Debian package dhcpcd-base)")
        if not os.access(c.script, os.X_OK):
            raise HostError(f"dhcpcd hook {c.script} is not executable (chmod 755 it)")
        text = s.supervisor.start(d, c, wait=True, timeout=c.first_exit_timeout, fail=self.fail)
        if text and c.log_file is not None:
            with open(c.log_file, "a") as f:
                f.write(text + "\n")
        if s.supervisor.daemon_pid(d, timeout=DAEMON_PID_WAIT) is None:
            raise self.fail("dhcpcd did not keep running")


def resolicit_dhcpv6(supervisor: Supervisor, n: Names, inst_id: str) -> list[Op]:
    """Release the DHCPv6 lease (dhcpcd's SIGALRM: release and exit), forget it, and the op that starts a fresh
    dhcpcd: its SOLICIT then gets whatever dnsmasq reserves for the MAC now."""
    c = dhcpcd_command(n, inst_id)
    supervisor.stop([daemon6(n, inst_id)], signal.SIGALRM)
    (c.lib_dir / "dhcpcd" / f"{c.interface}.lease6").unlink(missing_ok=True)
    return [RunDhcpcd(n.inst_ns(inst_id), c)]


def running(supervisor: Supervisor, c: UdhcpcCommand, n: Names, spec: InstanceSpec) -> bool:
    """True when the clients the spec needs run in its namespace (udhcpc with this argv, or still leasing in its
    first process) and no other client does."""
    d, d6 = daemon(n, spec.kernel_id), daemon6(n, spec.kernel_id)
    if not netns.exists(d.ns):
        return False
    v4 = supervisor.starting(d) or d.runs(c.argv()) if spec.dhcpv4 else d.pid() is None
    return v4 and (d6.pid() is not None) == spec.dhcpv6


def stop_unneeded(supervisor: Supervisor, n: Names, spec: InstanceSpec) -> None:
    """Stop a client the spec no longer needs (its network lost the v4 subnet, or the v6 one became SLAAC)."""
    unneeded = [d for d, needed in ((daemon(n, spec.kernel_id), spec.dhcpv4),
                                    (daemon6(n, spec.kernel_id), spec.dhcpv6)) if not needed]
    supervisor.stop(unneeded)


def remove(supervisor: Supervisor, n: Names, inst_ids: list[str], *, release: bool) -> None:
    """Stop the clients (udhcpc -R sends DHCPRELEASE on SIGTERM; SIGKILL when the network goes anyway), end
    anything left in the namespaces (dhcpcd's privilege-separation helpers too), delete them and the state."""
    daemons = [d for iid in inst_ids for d in (daemon(n, iid), daemon6(n, iid))]
    supervisor.stop(daemons, signal.SIGTERM if release else signal.SIGKILL)
    kill_all_in([n.inst_ns(iid) for iid in inst_ids])
    for iid in inst_ids:
        netns.remove(n.inst_ns(iid))
        shutil.rmtree(n.inst_dir(iid), ignore_errors=True)
        shutil.rmtree(n.resolv_dir(iid), ignore_errors=True)


def network_of(n: Names, inst_id: str) -> str | None:
    """The network the instance's state says it is plugged into."""
    try:
        return n.inst_network(inst_id).read_text().strip() or None
    except OSError:
        return None


def scan(n: Names, scan: HostScan, namespaces: set[str], state_dirs: set[str]) -> None:
    """Record the instance namespaces and state directories found, their network and verified client pids."""
    for iid in namespaces:
        scan.instances.setdefault(iid, InstanceFound()).ns = True
    for iid in state_dirs:
        found = scan.instances.setdefault(iid, InstanceFound())
        found.state_dir = True
        found.network = network_of(n, iid)
    for iid, found in scan.instances.items():
        found.udhcpc_pid = daemon(n, iid).pid()
        found.dhcpcd_pid = daemon6(n, iid).pid()
