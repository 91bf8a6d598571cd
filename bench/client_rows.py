"""Figure 9 (issue 16): the instance's IPv4 DHCP client alone — busybox udhcpc, as the product runs it, against
dhcpcd -4 (which the IPv6 work brought in), without and with rapid commit (RFC 4039: DISCOVER → ACK in one
exchange, dnsmasq's ``--dhcp-rapid-commit``).

Each sample is the floor's network (segment, dnsmasq with the driver's argv, plus ``--dhcp-rapid-commit`` for
the last variant) and one plugged instance, made untimed; the clock runs from spawning the client to its first
process exiting with the address configured (udhcpc without ``-f``, dhcpcd ``-w``: both fork once bound). dhcpcd
runs as the product runs it for DHCPv6: under ``unshare -m`` with the instance's own ``/run`` and ``/var/lib``,
no config file (``-f /dev/null``), no ARP probe (``-A``: udhcpc probes nothing either) and no IPv4LL fallback.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from tenants.host import HostDriver, netns
from tenants.host.dhcp_client import MOUNT_AND_EXEC
from tenants.host.process import c_env, kill_all_in

from .contender import instances_for, net_id
from .floor import Floor
from .stats import summary

VARIANTS = ("udhcpc", "dhcpcd", "dhcpcd rapid commit")
RAPID_COMMIT = "--dhcp-rapid-commit"


def _dhcpcd_argv(run_dir: Path, lib_dir: Path, interface: str, *, rapid: bool) -> list[str]:
    client = ["dhcpcd", "-f", "/dev/null", "-4", "-A", "-L", "-w", "-t", "10", "-c", "/bin/true",
              *(["-o", "rapid_commit"] if rapid else []), interface]
    return ["unshare", "-m", "--propagation", "private", "--", "sh", "-c", MOUNT_AND_EXEC, "sh", str(run_dir),
            str(lib_dir), *client]


def _has_address(ns: str, dev: str, ip: str) -> bool:
    out = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev], capture_output=True, text=True)
    return f" {ip}/" in out.stdout


def measure(driver: HostDriver, samples: int) -> dict[str, Any]:
    """``samples`` exchanges per variant, variants interleaved sample by sample so that load drifts hit all three."""
    floor, n = Floor(driver), driver.names
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for i in range(samples):
            for k, variant in enumerate(VARIANTS):
                nid = net_id(i * len(VARIANTS) + k)
                inst = instances_for(nid, i * len(VARIANTS) + k, 1)[0]
                floor.network(nid, [inst], extra_args=[RAPID_COMMIT] if variant.endswith("rapid commit") else [])
                floor.plug(inst)
                iid = inst.spec.kernel_id
                ns, dev = n.inst_ns(iid), n.inst_dev(iid)
                if variant == "udhcpc":
                    cmd = driver.udhcpc_command(inst.spec)
                    argv, env = cmd.argv(), cmd.env
                else:
                    run_dir, lib_dir = n.dhcpcd_run(iid), n.dhcpcd_lib(iid)
                    run_dir.mkdir(parents=True, exist_ok=True)
                    lib_dir.mkdir(parents=True, exist_ok=True)
                    argv, env = _dhcpcd_argv(run_dir, lib_dir, dev, rapid=variant != "dhcpcd"), c_env()
                t0 = time.perf_counter()
                p = netns.spawn(ns, argv, env)
                out, _ = p.communicate(timeout=30)
                took = time.perf_counter() - t0
                if not _has_address(ns, dev, inst.ip):
                    raise RuntimeError(f"{variant}: no {inst.ip} on {dev} (exit {p.returncode}): "
                                       f"{(out or b'').decode(errors='replace')[-400:]}")
                times[variant].append(took)
                kill_all_in([ns])  # dhcpcd's processes (privilege separation: several), which no pid file lists
                floor.teardown()
    finally:
        floor.teardown()
    return {v: summary(t) for v, t in times.items()}


def table(r: dict[str, Any]) -> str:
    ms = 1000
    lines = [f"{'9. IPv4 client alone, spawn → address':<46} {'p50':>8} {'p95':>8} {'min':>8}"]
    for variant in VARIANTS:
        s = r.get(variant) or {}
        if s.get("n"):
            lines.append(f"{variant:<46} {s['median'] * ms:>6.0f}ms {s['p95'] * ms:>6.0f}ms {s['min'] * ms:>6.0f}ms")
    return "\n".join(lines)
