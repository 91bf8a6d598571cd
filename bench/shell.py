"""The hand-rolled shell baseline (the seed's way): ``ip netns add``, ``ip link add … veth`` in the root
namespace then moved into place, ``ip netns exec … dnsmasq`` and ``ip netns exec … udhcpc``, one command at a
time from a bash script. Same dnsmasq and udhcpc argv as netdash (taken from the driver's command builders).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from pyroute2 import IPRoute

from tenants.host import HostDriver
from tenants.host import dnsmasq as dm

from .contender import Inst, network_spec

q = shlex.quote


def _run(argv: list[str]) -> str:
    return " ".join(q(a) for a in argv)


class Shell:
    """Writes bash scripts into the run directory and times their execution (prefix ``b<tag>s-``)."""

    def __init__(self, driver: HostDriver, run_dir: Path) -> None:
        self.d = driver
        self.n = driver.names
        self.run_dir = run_dir
        self.count = 0

    def network_lines(self, nid: str, instances: list[Inst] = ()) -> list[str]:
        n, spec = self.n, network_spec(nid, instances)
        seg, dhcp, br, port, dev = n.seg_ns(nid), n.dhcp_ns(nid), n.bridge(nid), n.dhcp_port(nid), n.dhcp_dev(nid)
        cmd = self.d.dnsmasq_command(spec)
        d = n.net_dir(nid)
        return [
            f"ip netns add {seg}",
            f"ip netns add {dhcp}",
            f"ip -n {seg} link add {br} type bridge",
            f"ip -n {seg} link set {br} up",
            f"ip link add {port} type veth peer name {dev}",
            f"ip link set {port} netns {seg}",
            f"ip link set {dev} netns {dhcp}",
            f"ip -n {seg} link set {port} master {br} up",
            f"ip -n {dhcp} link set lo up",
            f"ip -n {dhcp} link set {dev} up",
            f"ip -n {dhcp} addr add 10.0.0.2/{spec.subnets[0].cidr.prefixlen} dev {dev}",
            f"mkdir -p -m 755 {d}",
            f"printf %s {q(dm.render_hosts(spec))} > {d}/hosts",
            f"printf %s {q(dm.render_opts(spec))} > {d}/opts",
            f"chmod 644 {d}/hosts {d}/opts",
            "ip netns exec " + dhcp + " " + _run(["env", "LANG=C", "LC_ALL=C", *cmd.argv()]),
        ]

    def reserve_lines(self, nid: str, instances: list[Inst]) -> list[str]:
        """Add reservations to the hosts file and make dnsmasq reload it."""
        spec = network_spec(nid, instances)
        d = self.n.net_dir(nid)
        return [f"printf %s {q(dm.render_hosts(spec))} > {d}/hosts", f"kill -HUP $(cat {d}/dnsmasq.pid)"]

    def instance_lines(self, inst: Inst) -> list[str]:
        n, spec = self.n, inst.spec
        iid, nid = spec.kernel_id, spec.network_kernel_id
        ns, port, dev = n.inst_ns(iid), n.inst_port(iid), n.inst_dev(iid)
        cmd = self.d.udhcpc_command(spec)
        env = [f"{k}={v}" for k, v in cmd.env.items() if k != "PATH"]
        return [
            f"ip netns add {ns}",
            f"ip link add {port} type veth peer name {dev} address {spec.mac}",
            f"ip link set {port} netns {n.seg_ns(nid)}",
            f"ip link set {dev} netns {ns}",
            f"ip -n {n.seg_ns(nid)} link set {port} master {n.bridge(nid)} up",
            f"ip -n {ns} link set lo up",
            f"ip -n {ns} link set {dev} up",
            f"mkdir -p {n.inst_dir(iid)}",
            "ip netns exec " + ns + " " + _run(["env", *env, *cmd.argv()]),
        ]

    def teardown_lines(self) -> list[str]:
        """Kill every dnsmasq/udhcpc by pid file, delete every namespace, remove the state."""
        sd = self.d.config.state_dir
        p = self.n.prefix
        return [
            f"for f in {sd}/*/*.pid; do [ -f \"$f\" ] && kill $(cat \"$f\") 2>/dev/null; done; true",
            f"for ns in $(ip netns list | awk '{{print $1}}' | grep '^{p}'); do ip netns del $ns; done",
            f"rm -rf {sd} /etc/netns/{p}inst-*",
        ]

    def run(self, lines: list[str], timeout: float = 900) -> float:
        """Run ``lines`` as one ``bash -e`` script; return its wall time in seconds."""
        self.count += 1
        path = self.run_dir / f"shell-{self.count}.sh"
        path.write_text("set -e\n" + "\n".join(lines) + "\n")
        t0 = time.perf_counter()
        p = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=timeout)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"shell baseline {path} failed: {p.stderr.strip()[-500:]}")
        return dt


def remove_root_links(prefix: str) -> int:
    """Delete devices named with ``prefix`` left in the root namespace by an interrupted move."""
    removed = 0
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(prefix):
                ipr.link("del", index=link["index"])
                removed += 1
    return removed
