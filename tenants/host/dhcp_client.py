"""The instance's DHCP clients, each described by a frozen dataclass: busybox udhcpc (IPv4) and Debian's dhcpcd
(DHCPv6; busybox has no udhcpc6 and odhcp6c is not in Debian 12, see :class:`DhcpcdCommand`).

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
DHCPCD_SCRIPT = Path(__file__).with_name("dhcpcd.script")
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
    events_file: Path | None = None  # our script appends a line per call: a deconfig stays on record
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
        """Passed through udhcpc to the script: where to record the lease (and the resolver, the events)."""
        files = {"NETDASH_LEASE_FILE": str(self.lease_file)}
        if self.resolv_file is not None:
            files["NETDASH_RESOLV_FILE"] = str(self.resolv_file)
        if self.events_file is not None:
            files["NETDASH_EVENTS_FILE"] = str(self.events_file)
        return c_env(**files)

    @property
    def first_exit_timeout(self) -> float:
        """Upper bound for the first process to exit (lease or background)."""
        return self.discover_tries * self.discover_pause + 5.0


# Run as ``sh -c MOUNT_AND_EXEC sh RUN LIB ARGV...``: a constant script, every path an argument, nothing interpolated.
MOUNT_AND_EXEC = 'mount --bind "$1" /run && mount --bind "$2" /var/lib && shift 2 && exec "$@"'


@dataclass(frozen=True)
class DhcpcdCommand:
    """dhcpcd -6 for one instance interface, in a mount namespace of its own.

    dhcpcd's paths are compiled in (``/run/dhcpcd/<if>-6.pid``, ``/var/lib/dhcpcd/duid``, the lease files), so it
    runs under ``unshare -m`` with the instance's ``run/`` and ``lib/`` state dirs bound over ``/run`` and
    ``/var/lib``: nothing of the host's is read or written, and two instances never share a DUID. ``-c`` names
    our hook script (Debian's hooks would rewrite the host's resolv.conf and hostname); ``-f /dev/null`` skips the
    host's dhcpcd.conf. The same argv serves stateful and stateless subnets: dhcpcd reads M/O from the RA and
    asks for an address (M=1) or only for options (O=1). ``-b`` backgrounds at once, so the first process exits
    in milliseconds; the address follows in ~2 s (dhcpcd's own 1 s SOLICIT delay, MEASURED.md).

    Once running, dhcpcd (privilege separation) rewrites its command line to a process title (``dhcpcd: <if>
    [ip6]``), so its argv cannot be compared as udhcpc's is; nothing in it can change for an instance anyway (every
    part derives from the instance's names), so a verified pid means it runs as wanted.
    """

    program: ClassVar[str] = "dhcpcd"
    interface: str
    run_dir: Path  # bound over /run: dhcpcd's pid file, control sockets, and the hook's lease6 file
    lib_dir: Path  # bound over /var/lib: its DUID and lease
    script: Path = DHCPCD_SCRIPT

    def client_argv(self) -> list[str]:
        """dhcpcd's own argv (inside the mount namespace)."""
        return ["dhcpcd", "-f", "/dev/null", "-6", "-b", "-d", "-j", "/run/dhcpcd.log", "-c", str(self.script),
                self.interface]

    def argv(self) -> list[str]:
        return ["unshare", "-m", "--propagation", "private", "--", "sh", "-c", MOUNT_AND_EXEC, "sh",
                str(self.run_dir), str(self.lib_dir), *self.client_argv()]

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "dhcpcd" / f"{self.interface}-6.pid"

    @property
    def log_file(self) -> Path:
        """Its debug log (``-d -j /run/dhcpcd.log``): every RA and DHCPv6 exchange, for people and the inspector."""
        return self.run_dir / "dhcpcd.log"

    @property
    def lease_file(self) -> Path:
        """What DHCPv6 gave, written by our hook as ``/run/lease6`` inside the mount namespace."""
        return self.run_dir / "lease6"

    @property
    def env(self) -> dict[str, str]:
        return c_env()

    first_exit_timeout: ClassVar[float] = 10.0


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


@dataclass(frozen=True)
class ClientEvent:
    """One call of our udhcpc script: when, which event (bound, renew, deconfig, nak, leasefail), and the
    address and server it carried (empty for a deconfig)."""

    at: float
    event: str
    ip: str
    server_id: str


EVENTS_KEPT = 200  # the last lines read: enough for a lab's history, bounded for a client renewing for weeks


def parse_client_events(text: str) -> list[ClientEvent]:
    """Lines ``<epoch> <event> [ip] [server]`` → events; malformed lines (a torn last write) are skipped."""
    out = []
    for line in text.splitlines()[-EVENTS_KEPT:]:
        parts = line.split()
        if len(parts) < 2 or not _EPOCH_RE.fullmatch(parts[0]):
            continue
        out.append(ClientEvent(float(parts[0]), parts[1], parts[2] if len(parts) > 2 else "",
                               parts[3] if len(parts) > 3 else ""))
    return out


def read_client_events(path: Path) -> list[ClientEvent]:
    """The instance's client events, oldest first ([] without a file: the client predates it, or never ran)."""
    try:
        return parse_client_events(path.read_text(errors="replace"))
    except (FileNotFoundError, NotADirectoryError):
        return []


@dataclass(frozen=True)
class InstanceLease6:
    """What the instance's dhcpcd recorded of DHCPv6 (our hook's ``lease6``): the reason and what the server gave
    (stateless: options only, no address)."""

    reason: str
    addresses: tuple[ipaddress.IPv6Address, ...]
    dns_servers: tuple[ipaddress.IPv6Address, ...]
    obtained: float | None


def _v6(text: str) -> tuple[ipaddress.IPv6Address, ...] | None:
    try:
        return tuple(ipaddress.IPv6Address(x) for x in text.split())
    except ValueError:
        return None


def parse_lease6(text: str) -> InstanceLease6 | None:
    """Parse the hook's key=value file strictly (a garbled or duplicated line: None, do not guess)."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, val = line.partition("=")
        if not sep or key in kv:
            return None
        kv[key] = val
    addresses = _v6(" ".join(v for k, v in sorted(kv.items()) if re.fullmatch(r"new_dhcp6_ia_na\d+_ia_addr\d+", k)))
    dns = _v6(kv.get("new_dhcp6_name_servers", ""))
    if addresses is None or dns is None or not kv.get("reason"):
        return None
    return InstanceLease6(kv["reason"], addresses, dns, _epoch(kv.get("obtained", "")))


def read_lease6(path: Path) -> InstanceLease6 | None:
    """The instance's current DHCPv6 result, or None if it holds none (or runs no dhcpcd)."""
    try:
        return parse_lease6(path.read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
