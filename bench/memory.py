"""Memory per network: PSS of the processes a network keeps (dnsmasq) and the drop in MemAvailable.

PSS, not RSS: hundreds of dnsmasqs share the same binary and libraries, which RSS counts once per process.
MemAvailable also catches what the kernel spends (namespaces, bridges, veths, sockets), but other processes on
the machine move it too, so both are reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterable


def pss_kb(pid: int) -> int:
    """Proportional set size of ``pid`` in kB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in kB (0 if it is gone): the agent's own memory at N networks."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def total_pss_kb(pids: Iterable[int | None]) -> int:
    return sum(pss_kb(p) for p in pids if p is not None)


def mem_available_kb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def settled_mem_available_kb(samples: int = 3, pause: float = 0.2) -> int:
    """Median of a few samples, after a short pause (the kernel frees namespaces asynchronously)."""
    values = []
    for _ in range(samples):
        time.sleep(pause)
        values.append(mem_available_kb())
    return sorted(values)[len(values) // 2]
