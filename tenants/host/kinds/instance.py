"""An instance stand-in: namespace ``inst-I`` with a veth on its network's bridge carrying the instance's MAC, and
busybox udhcpc leasing on it (see :mod:`..dhcp_client` for why a separate process per instance)."""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, field

from .. import netns
from ..config import HostConfig
from ..dhcp_client import UdhcpcCommand
from ..errors import HostError
from ..interface import HostScan, InstanceFound
from ..naming import Names
from ..ops import LinkUp, MakeDir, NetnsAdd, Op, Session, Sysctl, VethAdd, WriteFile, shell_exec_in
from ..process import DAEMON_PID_WAIT, Daemon, Supervisor, kill_all_in
from ..specs import InstanceSpec

NS_KIND = "inst"
PROGRAM = UdhcpcCommand.program


def daemon(n: Names, inst_id: str) -> Daemon:
    """The instance's DHCP client as the supervisor recognises it."""
    return Daemon(PROGRAM, n.inst_ns(inst_id), n.udhcpc_pid(inst_id))


def command(config: HostConfig, n: Names, spec: InstanceSpec) -> UdhcpcCommand:
    """The udhcpc argv description for ``spec``."""
    iid = spec.kernel_id
    return UdhcpcCommand(
        busybox=config.busybox, interface=n.inst_dev(iid), hostname=spec.hostname,
        pid_file=n.udhcpc_pid(iid), lease_file=n.inst_lease(iid), resolv_file=n.resolv_conf(iid),
        log_file=n.udhcpc_log(iid),
    )


def plan(config: HostConfig, n: Names, spec: InstanceSpec, *, wait: bool) -> list[Op]:
    """Namespace, NIC plugged into the segment, udhcpc."""
    iid, nid = spec.kernel_id, spec.network_kernel_id
    ns, dev = n.inst_ns(iid), n.inst_dev(iid)
    return [
        MakeDir(n.inst_dir(iid)),
        WriteFile(n.inst_network(iid), nid + "\n"),
        NetnsAdd(ns),
        *fast_ipv6(ns, enabled=config.fast_ipv6),
        VethAdd(n.seg_ns(nid), n.inst_port(iid), ns, dev, master=n.bridge(nid), peer_mac=spec.mac),
        LinkUp(ns, "lo"),
        LinkUp(ns, dev),
        RunUdhcpc(ns, command(config, n, spec), wait=wait),
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


def running(supervisor: Supervisor, c: UdhcpcCommand, d: Daemon) -> bool:
    """True when the client runs in its namespace with this argv, or is still leasing in its first process."""
    if not netns.exists(d.ns):
        return False
    return supervisor.starting(d) or d.runs(c.argv())


def remove(supervisor: Supervisor, n: Names, inst_ids: list[str], *, release: bool) -> None:
    """Stop the clients (udhcpc -R sends DHCPRELEASE on SIGTERM; SIGKILL when the network goes anyway), end
    anything left in the namespaces, delete them and the state."""
    supervisor.stop([daemon(n, iid) for iid in inst_ids], signal.SIGTERM if release else signal.SIGKILL)
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
    """Record the instance namespaces and state directories found, their network and verified client pid."""
    for iid in namespaces:
        scan.instances.setdefault(iid, InstanceFound()).ns = True
    for iid in state_dirs:
        found = scan.instances.setdefault(iid, InstanceFound())
        found.state_dir = True
        found.network = network_of(n, iid)
    for iid, found in scan.instances.items():
        found.udhcpc_pid = daemon(n, iid).pid()
