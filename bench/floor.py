"""The floor: the same kernel steps done directly — netlink in one process, no app, no queue, no database.

One pyroute2 handle per namespace (opened once, right after the namespace exists), veth pairs created directly
in their two namespaces, dnsmasq and udhcpc spawned with the driver's own argv. No idempotence checks, no
status rows, no events: what is left is what the kernel, dnsmasq and udhcpc cost.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

from pyroute2 import IPRoute

from tenants.host import HostDriver, netns
from tenants.host import dnsmasq as dm
from tenants.host.process import kill, wait_gone

from .contender import Inst, network_spec


class Floor:
    """Realise networks and instances with the fewest steps possible (prefix ``b<tag>f-``)."""

    def __init__(self, driver: HostDriver) -> None:
        self.d = driver
        self.n = driver.names
        self.ipr: dict[str, IPRoute] = {}

    def _open(self, ns: str) -> IPRoute:
        netns.create(ns)
        h = self.ipr[ns] = IPRoute(use_socket=netns.netlink_socket(ns))
        return h

    def close(self) -> None:
        for h in self.ipr.values():
            h.close()
        self.ipr.clear()

    def network(self, nid: str, instances: list[Inst] = (), *, extra_args: list[str] = ()) -> None:
        """Segment + bridge, DHCP namespace + veth + address, files, dnsmasq (returns when it is bound);
        ``extra_args`` go after the driver's dnsmasq argv (figure 9's rapid commit)."""
        n, spec = self.n, network_spec(nid, instances)
        seg, dhcp = n.seg_ns(nid), n.dhcp_ns(nid)
        s, q = self._open(seg), self._open(dhcp)
        s.link("add", ifname=n.bridge(nid), kind="bridge", state="up")
        br = s.link_lookup(ifname=n.bridge(nid))[0]
        fd = os.open(netns.path(dhcp), os.O_RDONLY | os.O_CLOEXEC)
        try:
            s.link("add", ifname=n.dhcp_port(nid), kind="veth", state="up", master=br,
                   peer={"ifname": n.dhcp_dev(nid), "net_ns_fd": fd})
        finally:
            os.close(fd)
        q.link("set", index=1, state="up")  # lo is always ifindex 1 in a fresh namespace
        dev = q.link_lookup(ifname=n.dhcp_dev(nid))[0]
        q.link("set", index=dev, state="up")
        q.addr("add", index=dev, address="10.0.0.2", prefixlen=spec.subnets[0].cidr.prefixlen)
        n.net_dir(nid).mkdir(parents=True, exist_ok=True)
        n.net_dir(nid).chmod(0o755)
        n.hosts(nid).write_text(dm.render_hosts(spec))
        n.opts(nid).write_text(dm.render_opts(spec))
        for f in (n.hosts(nid), n.opts(nid)):
            f.chmod(0o644)
        cmd = self.d.dnsmasq_command(spec)
        p = netns.spawn(dhcp, [*cmd.argv(), *extra_args], cmd.env)
        out, _ = p.communicate(timeout=10)
        if p.returncode != 0:
            raise RuntimeError(f"floor dnsmasq failed: {out.decode(errors='replace')}")

    def plug(self, inst: Inst) -> None:
        """Instance namespace with its NIC on the bridge (no DHCP yet)."""
        n, spec = self.n, inst.spec
        iid, nid = spec.kernel_id, spec.network_kernel_id
        ns = n.inst_ns(iid)
        i = self._open(ns)
        n.inst_dir(iid).mkdir(parents=True, exist_ok=True)
        s = self.ipr[n.seg_ns(nid)]
        br = s.link_lookup(ifname=n.bridge(nid))[0]
        fd = os.open(netns.path(ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            s.link("add", ifname=n.inst_port(iid), kind="veth", state="up", master=br,
                   peer={"ifname": n.inst_dev(iid), "net_ns_fd": fd, "address": spec.mac})
        finally:
            os.close(fd)
        i.link("set", index=1, state="up")
        i.link("set", index=i.link_lookup(ifname=n.inst_dev(iid))[0], state="up")

    def dhcp(self, insts: list[Inst], timeout: float = 20.0) -> None:
        """Start udhcpc in every instance at once; return when each first process exited with a lease."""
        procs = []
        for inst in insts:
            cmd = self.d.udhcpc_command(inst.spec)
            procs.append(netns.spawn(self.n.inst_ns(inst.spec.kernel_id), cmd.argv(), cmd.env))
        for p in procs:
            p.communicate(timeout=timeout)
        for inst in insts:
            if self.d.instance_lease(inst.spec.kernel_id) is None:
                raise RuntimeError(f"floor instance {inst.spec.kernel_id} got no lease")

    def reserve(self, nid: str, instances: list[Inst]) -> None:
        """Rewrite the hosts file with ``instances`` and SIGHUP dnsmasq (one reload for the whole batch)."""
        dm.write_atomic(self.n.hosts(nid), dm.render_hosts(network_spec(nid, instances)))
        pid = self.d.dnsmasq_pid(nid)
        if pid is not None:
            kill(pid, signal.SIGHUP)
            time.sleep(0.001)  # dnsmasq re-reads on its next loop turn

    def teardown(self) -> None:
        """SIGTERM every process (from pid files), wait, delete every namespace and state directory."""
        self.close()
        pids = []
        for name in netns.list_names():
            parsed = self.n.parse_ns(name)
            if parsed is None:
                continue
            kind, kid = parsed
            pid = self.d.dnsmasq_pid(kid) if kind == "qdhcp" else self.d.udhcpc_pid(kid) if kind == "inst" else None
            if pid is not None and kill(pid, signal.SIGKILL if kind == "inst" else signal.SIGTERM):
                pids.append(pid)
        for pid in pids:
            wait_gone(pid)
        for name in netns.list_names():
            parsed = self.n.parse_ns(name)
            if parsed is not None:
                netns.remove(name)
                if parsed[0] == "inst":
                    shutil.rmtree(self.n.resolv_dir(parsed[1]), ignore_errors=True)
        shutil.rmtree(self.d.config.state_dir, ignore_errors=True)
