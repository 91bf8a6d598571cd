"""Bench rows for IPv6 (issue 15): create → v6 address usable in the instance, per mode, driver against by hand.

"Usable" is the instance's own view: its global address present and no longer tentative (DAD done). Each sample
is one fresh network (made first, not timed) and the creation of one instance on it: ``driver`` is
``LinuxHostDriver.ensure_instance`` (what the agent's jobs call), ``shell`` replays the very same plan as a bash
script of ``ip`` / ``ip netns exec`` lines (the driver's transcript: the same steps by hand). Every mode is
measured with the kernel's default instance sysctls and with ``HostConfig.fast_ipv6`` (``NETDASH_FAST_IPV6=1``:
no RS delay, no DAD), which is where SLAAC's ~3.5 s goes (MEASURED.md). Uses the floor and shell prefixes, so
the supervisor's cleanup covers it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import subprocess
import time
from pathlib import Path
from typing import Any

from tenants.host import HostDriver, InstanceSpec, LinuxHostDriver, NetworkSpec, ReservationSpec, SubnetSpec
from tenants.validators import eui64_address

from .stats import summary, wait_for

MODES = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")
PREFIX = ipaddress.ip_network("2001:db8:b6::/64")
USABLE_TIMEOUT = 30.0


def _specs(j: int, mode: str) -> tuple[NetworkSpec, InstanceSpec, str]:
    """Network ``j`` (kernel id ``b6<j>``) with one v6 subnet in ``mode`` and one instance; the address it gets."""
    nid, iid, mac = f"b6{j:04x}", f"c6{j:04x}", f"02:00:00:b6:{j >> 8 & 255:02x}:{j & 255:02x}"
    subnet = SubnetSpec(cidr=PREFIX, gateway=PREFIX[1], dhcp_address=PREFIX[2], tag="v6", lease_seconds=600,
                        ipv6_ra_mode=mode, ipv6_address_mode=mode)
    fixed = PREFIX[0x100 + j]
    reservations = (ReservationSpec(mac, f"h{j}", str(fixed)),) if mode == "dhcpv6-stateful" else ()
    want = str(fixed) if mode == "dhcpv6-stateful" else str(eui64_address(PREFIX, mac))
    inst = InstanceSpec(iid, nid, mac, f"h{j}", dhcpv4=False, dhcpv6=mode != "slaac")
    return NetworkSpec(nid, (subnet,), reservations), inst, want


def _usable(ns: str, dev: str, want: str) -> bool:
    out = subprocess.run(["ip", "-n", ns, "-6", "-o", "addr", "show", "dev", dev, "scope", "global", "-tentative"],
                         capture_output=True, text=True).stdout
    return any(line.split()[3].split("/")[0] == want for line in out.splitlines())


def _sample(d: HostDriver, j: int, mode: str, *, by_hand: bool, run_dir: Path) -> float:
    net, inst, want = _specs(j, mode)
    n = d.names
    d.ensure_network(net)  # not timed: the row is about the instance, on a network already advertising
    t0 = time.perf_counter()
    if by_hand:
        script = run_dir / f"ipv6-{n.prefix}{j}.sh"
        script.write_text("\n".join(["set -e", *d.transcript_instance(inst)]) + "\n")
        subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    else:
        d.ensure_instance(inst)
    t1 = wait_for(lambda: _usable(n.inst_ns(inst.kernel_id), n.inst_dev(inst.kernel_id), want), USABLE_TIMEOUT,
                  what=f"{mode} address {want}")
    d.remove_instance(inst.kernel_id, release=False)
    d.remove_network(net.kernel_id)
    return t1 - t0


def measure(drivers: dict[str, HostDriver], run_dir: Path, n: int) -> dict[str, Any]:
    """``{mode: {"default"|"fast": {"driver": summary, "shell": summary}}}`` over ``n`` samples each."""
    out: dict[str, Any] = {}
    j = 0
    for mode in MODES:
        for speed, fast in (("default", False), ("fast", True)):
            row = out.setdefault(mode, {}).setdefault(speed, {})
            for who, by_hand in (("driver", False), ("shell", True)):
                base = drivers["floor" if who == "driver" else "shell"]
                d = LinuxHostDriver(dataclasses.replace(base.config, fast_ipv6=fast))
                samples = []
                for _ in range(n):
                    j += 1
                    samples.append(_sample(d, j, mode, by_hand=by_hand, run_dir=run_dir))
                row[who] = summary(samples)
    return out


def table(rows: dict[str, Any]) -> str:
    """One line per mode and speed: median and p95 in ms, driver against by hand."""
    lines = [f"{'create → v6 address usable':<40} {'driver p50':>10} {'p95':>8} {'shell p50':>10} {'p95':>8}"]
    for mode, speeds in rows.items():
        for speed, who in speeds.items():
            d, s = who["driver"], who["shell"]
            lines.append(f"{mode + ' (' + speed + ')':<40} {d['median'] * 1e3:>8.0f}ms {d['p95'] * 1e3:>6.0f}ms "
                         f"{s['median'] * 1e3:>8.0f}ms {s['p95'] * 1e3:>6.0f}ms")
    return "\n".join(lines)
