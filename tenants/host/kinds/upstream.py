"""The simulated outside world on an external network: namespace ``upstream-N`` with a veth on that network's
bridge, the external subnet's gateway address (TEST-NET only, see :class:`..specs.UpstreamSpec`), no default
route and nothing linked to the root namespace, running :mod:`..echo_peer` so SNAT and floating IPs can be seen
from outside.

With IPv6 it also holds an address in 2001:db8::/32 and one static route per routed tenant prefix via the
router's external IPv6 address (the spec's ``routes6``): IPv6 is not translated, so the outside needs the way
back, as a provider's router would learn it. Still no default route.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import netns
from ..errors import HostError
from ..interface import HostScan, UpstreamFound
from ..naming import Names
from ..ops import AddrAdd, LinkUp, MakeDir, NetnsAdd, Op, PrefixRouteReplace, Session, VethAdd, shell_exec_in
from ..process import Daemon, Supervisor, c_env, kill_all_in
from ..specs import UpstreamSpec

NS_KIND = "upstream"
UPSTREAM_ECHO_PORT = 7007
SCRIPT = Path(__file__).resolve().parent.parent / "echo_peer.py"
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class EchoCommand:
    """The echo service's argv, run with the interpreter that runs the agent."""

    pid_file: Path
    log_file: Path | None
    interpreter: str = sys.executable
    port: int = UPSTREAM_ECHO_PORT
    env: dict[str, str] = field(default_factory=c_env, compare=False)

    @property
    def program(self) -> str:
        return os.path.basename(self.interpreter)

    def argv(self) -> list[str]:
        return [self.interpreter, str(SCRIPT), str(self.port), str(self.pid_file)]


def command(n: Names, net_id: str) -> EchoCommand:
    """The echo service of the upstream on ``net_id``."""
    return EchoCommand(n.echo_pid(net_id), n.echo_log(net_id))


def daemon(n: Names, net_id: str) -> Daemon:
    """The echo service as the supervisor recognises it."""
    return Daemon(command(n, net_id).program, n.upstream_ns(net_id), n.echo_pid(net_id))


@dataclass(frozen=True)
class RunEcho(Op):
    """The echo service in the upstream namespace; a live one with the same argv is kept."""

    ns: str
    command: EchoCommand

    def shell(self) -> str:
        return shell_exec_in(self.ns, self.command)

    def apply(self, s: Session) -> None:
        d = Daemon(self.command.program, self.ns, self.command.pid_file)
        if s.supervisor.running_as(d, self.command.argv()) is not None:
            return
        try:
            s.supervisor.start(d, self.command, wait=True, timeout=START_TIMEOUT, fail=self.fail)
        except HostError as exc:
            # One that no pid file names any more (the state dir went behind our back) still holds the port.
            if "Address already in use" not in str(exc) or not d.kill_strays():
                raise
            s.supervisor.start(d, self.command, wait=True, timeout=START_TIMEOUT, fail=self.fail)


def plan(n: Names, spec: UpstreamSpec) -> list[Op]:
    """State dir, namespace, veth on the external network's bridge, the address, the echo service."""
    nid = spec.network_kernel_id
    ns, dev = n.upstream_ns(nid), n.upstream_dev(nid)
    return [
        MakeDir(n.upstream_dir(nid)),
        NetnsAdd(ns),
        VethAdd(n.seg_ns(nid), n.upstream_port(nid), ns, dev, master=n.bridge(nid)),
        LinkUp(ns, "lo"),
        LinkUp(ns, dev),
        AddrAdd(ns, dev, str(spec.address.ip), spec.address.network.prefixlen),
        *plan_ipv6(n, spec),
        RunEcho(ns, command(n, nid)),
    ]


def plan_ipv6(n: Names, spec: UpstreamSpec) -> list[Op]:
    """The IPv6 address (``nodad``: usable at once) and the routes back to the routed tenant prefixes."""
    if spec.address6 is None:
        return []
    nid = spec.network_kernel_id
    ns, dev = n.upstream_ns(nid), n.upstream_dev(nid)
    return [AddrAdd(ns, dev, str(spec.address6.ip), spec.address6.network.prefixlen, nodad=True),
            *(PrefixRouteReplace(ns, dev, str(prefix), str(via)) for prefix, via in spec.routes6)]


def prune(s: Session, n: Names, spec: UpstreamSpec) -> None:
    """Drop an address the spec no longer names (the external subnet changed)."""
    ns, dev = n.upstream_ns(spec.network_kernel_id), n.upstream_dev(spec.network_kernel_id)
    idx = s.index(ns, dev)
    if idx is None:
        return
    want = (str(spec.address.ip), spec.address.network.prefixlen)
    for addr in s.ipr(ns).get_addr(index=idx, family=socket.AF_INET):
        have = (addr.get_attr("IFA_ADDRESS"), addr["prefixlen"])
        if have != want:
            s.ipr(ns).addr("del", index=idx, address=have[0], prefixlen=have[1])
    prune_ipv6(s, ns, idx, spec)


def prune_ipv6(s: Session, ns: str, idx: int, spec: UpstreamSpec) -> None:
    """Drop a global IPv6 address and the static IPv6 routes the spec no longer names (link-local stays)."""
    want6 = set() if spec.address6 is None else {(str(spec.address6.ip), spec.address6.network.prefixlen)}
    for addr in s.ipr(ns).get_addr(index=idx, family=socket.AF_INET6):
        have = (addr.get_attr("IFA_ADDRESS"), addr["prefixlen"])
        if addr["scope"] == 0 and have not in want6:
            s.ipr(ns).addr("del", index=idx, address=have[0], prefixlen=have[1])
    routes = {(str(p), str(via)) for p, via in spec.routes6}
    for r in s.ipr(ns).get_routes(family=socket.AF_INET6, oif=idx):
        via = r.get_attr("RTA_GATEWAY")
        if via is None:
            continue
        dst = f"{r.get_attr('RTA_DST')}/{r['dst_len']}"
        if (dst, via) not in routes:
            s.ipr(ns).route("del", dst=dst, gateway=via, oif=idx)


def remove(supervisor: Supervisor, n: Names, net_ids: Iterable[str]) -> None:
    """Stop the echo service, delete the namespace and the state."""
    ids = list(net_ids)
    supervisor.stop([daemon(n, nid) for nid in ids])
    kill_all_in([n.upstream_ns(nid) for nid in ids])
    for nid in ids:
        netns.remove(n.upstream_ns(nid))
        shutil.rmtree(n.upstream_dir(nid), ignore_errors=True)


def scan(n: Names, scan: HostScan, namespaces: set[str], state_dirs: set[str]) -> None:
    """Record the upstreams found and their verified echo pid."""
    for nid in namespaces:
        scan.upstreams.setdefault(nid, UpstreamFound()).ns = True
    for nid in state_dirs:
        scan.upstreams.setdefault(nid, UpstreamFound()).state_dir = True
    for nid, found in scan.upstreams.items():
        found.echo_pid = daemon(n, nid).pid()
