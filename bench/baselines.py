"""The same measurements for the floor (netlink in one process) and the shell baseline (bash + ip + udhcpc)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tenants.host import HostDriver
from tenants.host.specs import InstanceSpec

from . import memory
from .contender import Inst, inst_id, inst_ip, instances_for, kill_everything, mac, net_id
from .floor import Floor
from .shell import Shell
from .stats import summary


def _spread(n: int, k: int) -> dict[str, list[Inst]]:
    """``k`` instances spread over networks 0..n-1; instance 0 is the realise phase's probe on the last network."""
    out: dict[str, list[Inst]] = {}
    step = max(1, n // max(k, 1))
    for j in range(k):
        nid = net_id((n - 1 - j * step) % n)
        have = out.setdefault(nid, [])
        spec = InstanceSpec(kernel_id=inst_id(j), network_kernel_id=nid, mac=mac(j), hostname=f"h{j}")
        have.append(Inst(spec, inst_ip(len(have))))
    return out


class Baseline:
    """Runs each figure for one contender; ``kind`` is ``floor`` or ``shell``."""

    def __init__(self, kind: str, driver: HostDriver, run_dir: Path) -> None:
        self.kind = kind
        self.d = driver
        self.floor = Floor(driver) if kind == "floor" else None
        self.shell = Shell(driver, run_dir) if kind == "shell" else None

    # building blocks -------------------------------------------------------------------------------------
    def _networks(self, nids: list[str], insts: dict[str, list[Inst]]) -> None:
        if self.floor is not None:
            for nid in nids:
                self.floor.network(nid, insts.get(nid, []))
            everything = [i for nid in nids for i in insts.get(nid, [])]
            for inst in everything:
                self.floor.plug(inst)
            if everything:
                self.floor.dhcp(everything)
        else:
            assert self.shell is not None
            lines: list[str] = []
            for nid in nids:
                lines += self.shell.network_lines(nid, insts.get(nid, []))
            for nid in nids:
                for inst in insts.get(nid, []):
                    lines += self.shell.instance_lines(inst)
            self.shell.run(lines)

    def _teardown(self) -> None:
        if self.floor is not None:
            self.floor.teardown()
        else:
            assert self.shell is not None
            self.shell.run(self.shell.teardown_lines())

    # figures ---------------------------------------------------------------------------------------------
    def latency(self, n: int) -> dict[str, Any]:
        times = []
        for i in range(n):
            nid = net_id(i)
            inst = instances_for(nid, i, 1)
            t0 = time.perf_counter()
            self._networks([nid], {nid: inst})
            if self.d.instance_lease(inst[0].spec.kernel_id) is None:
                raise RuntimeError(f"{self.kind}: no lease in latency sample {i}")
            times.append(time.perf_counter() - t0)
        self._teardown()
        return {"lease_in_namespace": summary(times)}

    def realise(self, n: int) -> dict[str, Any]:
        nids = [net_id(i) for i in range(n)]
        probe = {nids[-1]: instances_for(nids[-1], 0, 1)}
        mem0 = memory.settled_mem_available_kb()
        t0 = time.perf_counter()
        self._networks(nids, probe)
        wall = time.perf_counter() - t0
        if self.d.instance_lease(probe[nids[-1]][0].spec.kernel_id) is None:
            raise RuntimeError(f"{self.kind}: probe got no lease")
        time.sleep(0.5)
        pids = [self.d.dnsmasq_pid(nid) for nid in nids]
        mem1 = memory.settled_mem_available_kb()
        return {"n": n, "wall": wall, "per_second": n / wall,
                "memory": {"dnsmasq_pss_kb_per_network": memory.total_pss_kb(pids) / n,
                           "dnsmasq_running": sum(p is not None for p in pids),
                           "mem_available_drop_kb_per_network": (mem0 - mem1) / n}}

    def reconcile(self, n: int, k: int) -> dict[str, Any]:
        """Add ``k`` instances, simulate a reboot, then rebuild everything and time it until all re-leased."""
        nids = [net_id(i) for i in range(n)]
        insts = _spread(n, k)
        everything = [i for v in insts.values() for i in v]
        # Reservations + instances (untimed), as the state before the reboot.
        if self.floor is not None:
            for nid, v in insts.items():
                self.floor.reserve(nid, v)
            fresh = [i for i in everything if self.d.instance_lease(i.spec.kernel_id) is None]
            for inst in fresh:
                self.floor.plug(inst)
            self.floor.dhcp(fresh)
            self.floor.close()
        else:
            assert self.shell is not None
            lines: list[str] = []
            for nid, v in insts.items():
                lines += self.shell.reserve_lines(nid, v)
                lines += [x for inst in v if self.d.instance_lease(inst.spec.kernel_id) is None
                          for x in self.shell.instance_lines(inst)]
            self.shell.run(lines)
        before = {i.spec.kernel_id: self.d.instance_lease(i.spec.kernel_id) for i in everything}
        assert all(before.values()), f"{self.kind}: not every instance leased before the reboot"
        kill_everything(self.d, keep_state=True)
        t0 = time.perf_counter()
        self._networks(nids, insts)
        wall = time.perf_counter() - t0
        same = all(str(self.d.instance_lease(k_).ip) == str(v.ip) for k_, v in before.items()
                   if self.d.instance_lease(k_) is not None)
        return {"networks": n, "instances": len(everything), "wall": wall, "same_ips": same}

    def teardown(self, n: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        self._teardown()
        wall = time.perf_counter() - t0
        return {"n": n, "wall": wall, "per_second": n / wall}

    def burst(self, m: int) -> dict[str, Any]:
        nid = net_id(0)
        insts = instances_for(nid, 0, m)
        self._networks([nid], {})
        t0 = time.perf_counter()
        if self.floor is not None:
            for inst in insts:
                self.floor.plug(inst)
            self.floor.reserve(nid, insts)
            self.floor.dhcp(insts)
        else:
            assert self.shell is not None
            lines: list[str] = []
            for k, inst in enumerate(insts):
                lines += self.shell.reserve_lines(nid, insts[: k + 1]) + self.shell.instance_lines(inst)
            self.shell.run(lines)
        wall = time.perf_counter() - t0
        missing = [i for i in insts if self.d.instance_lease(i.spec.kernel_id) is None]
        if missing:
            raise RuntimeError(f"{self.kind}: {len(missing)} burst instances without a lease")
        self._teardown()
        return {"m": m, "wall": wall}
