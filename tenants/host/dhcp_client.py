"""The instance's DHCP client: busybox udhcpc, described by a frozen dataclass.

Why udhcpc (a separate process) and not pyroute2's in-process client (33 ms vs ~107 ms per
lease, MEASURED.md): an instance must keep its lease, renew it and answer NAKs on its own
while the agent or RQ worker restarts, exactly like a VM would. A process per instance
also gives release-on-exit (``-R``) for free.

udhcpc is started without ``-f``: its first process exits once it holds a lease (after
running our script, and then daemonises) or, with ``-b``, after ``-t`` failed discovers (and
keeps trying in the background). Waiting for that exit gives a synchronous result without
ever leaving a child of ours behind.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from . import validate as v
from .process import c_env

SCRIPT = Path(__file__).with_name("udhcpc.script")
_EPOCH_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class UdhcpcCommand:
    """A udhcpc run for one instance interface."""

    program: ClassVar[str] = "udhcpc"
    busybox: str
    interface: str
    hostname: str
    pid_file: Path
    lease_file: Path
    resolv_file: Path | None
    log_file: Path | None = None  # start-up output (script errors) is appended here
    script: Path = SCRIPT
    discover_tries: int = 3
    discover_pause: int = 1
    retry_after: int = 3

    def argv(self) -> list[str]:
        return [
            self.busybox, "udhcpc",
            "-i", self.interface,
            "-s", str(self.script),
            "-p", str(self.pid_file),
            "-t", str(self.discover_tries),
            "-T", str(self.discover_pause),
            "-A", str(self.retry_after),
            "-b",  # keep trying in the background if the network's dnsmasq is down
            "-R",  # release the lease when we stop it (SIGTERM)
            "-x", f"hostname:{v.hostname(self.hostname)}",
        ]

    @property
    def env(self) -> dict[str, str]:
        """Passed through udhcpc to the script: where to record the lease."""
        if self.resolv_file is None:
            return c_env(NETDASH_LEASE_FILE=str(self.lease_file))
        return c_env(NETDASH_LEASE_FILE=str(self.lease_file), NETDASH_RESOLV_FILE=str(self.resolv_file))

    @property
    def first_exit_timeout(self) -> float:
        """Upper bound for the first process to exit (lease or background)."""
        return self.discover_tries * self.discover_pause + 5.0


@dataclass(frozen=True)
class InstanceLease:
    """What the instance holds, as written by our udhcpc script."""

    ip: v.IPAddress
    prefixlen: int
    router: v.IPAddress | None
    dns_servers: tuple[v.IPAddress, ...]
    server_id: v.IPAddress | None
    lease_seconds: int | None
    domain: str | None
    obtained: float | None  # epoch seconds with nanoseconds: two leases within one second still differ

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(f"{self.ip}/{self.prefixlen}")


def _int(s: str) -> int | None:
    return int(s) if s.isdigit() else None


def _epoch(s: str) -> float | None:
    return float(s) if _EPOCH_RE.fullmatch(s) else None


def parse_lease(text: str) -> InstanceLease | None:
    """Parse the script's key=value file strictly; None if it has no usable address."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, val = line.partition("=")
        if not sep or key in kv:
            return None  # garbled or duplicated: do not guess
        kv[key] = val
    try:
        ip = v.ip(kv.get("ip", ""))
        prefixlen = int(kv.get("mask", ""))
    except (ValueError, TypeError):
        return None
    router = v.ip(kv["router"]) if kv.get("router") else None
    server = v.ip(kv["serverid"]) if kv.get("serverid") else None
    dns = tuple(v.ip(x) for x in kv.get("dns", "").split())
    domain = kv.get("domain") or None
    if domain is not None:
        try:
            v.domain(domain)
        except ValueError:
            domain = None
    return InstanceLease(ip, prefixlen, router, dns, server, _int(kv.get("lease", "")), domain,
                         _epoch(kv.get("obtained", "")))


def read_lease(path: Path) -> InstanceLease | None:
    """The instance's current lease, or None if it holds none."""
    try:
        return parse_lease(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:
        return None
