"""dnsmasq: argv as a frozen dataclass and the hosts/opts files it reads (supervised by :mod:`.process`).

Choices (see STYLE.md "dnsmasq lessons"):

* ``--conf-file=/dev/null --no-hosts --no-resolv`` and no ``--server``: the instance answers
  only for its own network's names and never forwards anywhere.
* ``--bind-interfaces --interface=DEV --except-interface=lo``: each dnsmasq owns exactly one
  interface in its own namespace.
* No inotify users (``--dhcp-hostsdir``, resolv.conf polling): ``fs.inotify.max_user_instances``
  is 128 and we run hundreds of dnsmasqs. Reservations are reloaded with SIGHUP after an
  atomic file replace instead.
* ``--no-ping`` (else ~3 s per new client) and ``--dhcp-rapid-commit`` as LXD does.
* ``--dhcp-authoritative`` when this is the network's only server (a restarted dnsmasq ACKs renewals at once);
  one of several servers (HA) runs as Neutron's does instead: non-authoritative, a lease file pre-seeded with
  every reservation (:func:`seed_leases`) and ``--addn-hosts`` (:func:`render_addn_hosts`).
* IPv6 (research §2.1): ``--enable-ra`` with ``--ra-param=DEV,0,0`` (router lifetime 0: the
  prefix and the M/O/A flags, never a default route via the DHCP namespace) and per subnet
  ``ra-only`` (SLAAC), ``ra-stateless`` (SLAAC + DHCPv6 options) or ``static`` (DHCPv6
  addresses reserved by MAC, ``[addr]`` in the hosts file).
* dnsmasq daemonises itself: its first process exits only after the listening sockets are
  bound and the pid file is written (or prints the reason it failed), which gives us a
  synchronous, error-reporting start and a daemon that is reparented away from us.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from . import validate as v
from .errors import HostInputError
from .process import c_env
from .specs import NetworkSpec, SubnetSpec

# dnsmasq's range mode per IPv6 address mode when dnsmasq sends the RA; with an outside router (address mode
# alone) SLAAC needs nothing from dnsmasq and DHCPv6 is answered from a static range, as Neutron does.
_RA_RANGE_MODE = {"slaac": "ra-only", "dhcpv6-stateless": "ra-stateless", "dhcpv6-stateful": "static"}


@dataclass(frozen=True)
class DhcpRange:
    """One ``--dhcp-range=set:TAG,NETWORK,MODE,MASK,LEASE``: ``static`` = reservations only, like Neutron's static
    mode (IPv4 and DHCPv6); ``ra-only`` / ``ra-stateless`` = advertised for SLAAC. IPv6 masks are prefix lengths."""

    tag: str
    network: str
    netmask: str
    lease_seconds: int
    mode: str = "static"
    advertised: bool = False

    def arg(self) -> str:
        return f"--dhcp-range=set:{self.tag},{self.network},{self.mode},{self.netmask},{self.lease_seconds}"

    @classmethod
    def for_subnet(cls, s: SubnetSpec) -> DhcpRange | None:
        """The range serving ``s``; None for SLAAC behind an outside router (nothing for dnsmasq to do)."""
        if s.cidr.version == 4:
            return cls(s.tag, str(s.cidr.network_address), str(s.cidr.netmask), s.lease_seconds)
        if s.ipv6_ra_mode is None:
            if s.ipv6_address_mode == "slaac":
                return None
            return cls(s.tag, str(s.cidr.network_address), str(s.cidr.prefixlen), s.lease_seconds)
        return cls(s.tag, str(s.cidr.network_address), str(s.cidr.prefixlen), s.lease_seconds,
                   _RA_RANGE_MODE[s.ipv6_ra_mode], advertised=True)


@dataclass(frozen=True)
class DnsmasqCommand:
    """Everything that defines a running dnsmasq; ``argv()`` is its command line.

    Two dnsmasqs with equal argv are interchangeable, so the driver restarts a running one
    only when the argv changes (file contents are reloaded with SIGHUP instead).
    """

    program: ClassVar[str] = "dnsmasq"
    binary: str
    interface: str
    pid_file: Path
    lease_file: Path
    hosts_file: Path
    opts_file: Path
    log_file: Path
    ranges: tuple[DhcpRange, ...]
    domains: tuple[tuple[str, str], ...]  # (domain, cidr)
    addn_hosts_file: Path | None = None  # set: one of several servers (HA), non-authoritative

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            "--conf-file=/dev/null",
            "--no-hosts",
            "--no-resolv",
            "--strict-order",
            "--bind-interfaces",
            f"--interface={self.interface}",
            "--except-interface=lo",
            f"--pid-file={self.pid_file}",
            f"--dhcp-leasefile={self.lease_file}",
            f"--dhcp-hostsfile={self.hosts_file}",
            f"--dhcp-optsfile={self.opts_file}",
            f"--log-facility={self.log_file}",
            "--log-dhcp",
            "--no-ping",
            "--dhcp-rapid-commit",
            *(["--dhcp-authoritative"] if self.addn_hosts_file is None else [f"--addn-hosts={self.addn_hosts_file}"]),
            "--local-service",
            "--cache-size=0",
        ]
        argv += [r.arg() for r in self.ranges]
        if any(r.advertised for r in self.ranges):
            # Router lifetime 0: the network is isolated, dnsmasq is nobody's default router.
            argv += ["--enable-ra", f"--ra-param={self.interface},0,0"]
        if self.domains:
            # --dhcp-fqdn needs a default domain; per-subnet ones then override it.
            argv.append(f"--domain={self.domains[0][0]}")
        for dom, cidr in self.domains:
            argv.append(f"--domain={dom},{cidr}")
        for dom in dict.fromkeys(d for d, _ in self.domains):
            argv.append(f"--local=/{dom}/")  # answered here only, never forwarded
        if self.domains:
            argv.append("--dhcp-fqdn")
        return argv

    @property
    def env(self) -> dict[str, str]:
        """A minimal environment; LANG=C keeps its messages parseable."""
        return c_env()


def command_for(spec: NetworkSpec, *, binary: str, interface: str, pid_file: Path, lease_file: Path,
                hosts_file: Path, opts_file: Path, log_file: Path, addn_hosts_file: Path | None = None
                ) -> DnsmasqCommand:
    """Build the dnsmasq command serving ``spec``'s DHCP-enabled subnets (``addn_hosts_file``: required if HA)."""
    if spec.ha and addn_hosts_file is None:
        raise HostInputError(f"network {spec.kernel_id}: an HA DHCP server needs its addn-hosts file")
    ranges = [r for r in (DhcpRange.for_subnet(s) for s in spec.dhcp_subnets) if r is not None]
    domains: list[tuple[str, str]] = []
    for s in spec.dhcp_subnets:
        if s.domain:
            domains.append((v.domain(s.domain), str(v.network(s.cidr))))
    return DnsmasqCommand(binary, interface, pid_file, lease_file, hosts_file, opts_file, log_file,
                          tuple(ranges), tuple(domains), addn_hosts_file if spec.ha else None)


def render_hosts(spec: NetworkSpec) -> str:
    """``--dhcp-hostsfile`` content: ``mac[,ip][,[ip6]][,hostname]`` per reservation (IPv6 in brackets).

    Values were validated by the specs (no commas, newlines, NULs can reach here).
    """
    lines = []
    for r in spec.reservations:
        fields = [v.mac(r.mac)]
        for ip in (r.ip, r.ip6):
            if ip is not None:
                address = v.ip(ip)
                fields.append(f"[{address}]" if address.version == 6 else str(address))
        if r.hostname:
            fields.append(v.hostname(r.hostname))
        lines.append(",".join(fields))
    return "".join(line + "\n" for line in lines)


def render_addn_hosts(spec: NetworkSpec) -> str:
    """``--addn-hosts`` content (HA): ``address hostname`` per reserved address, so every server answers every
    instance's name, not only those it leased to."""
    return "".join(f"{address} {v.hostname(r.hostname)}\n" for r in spec.reservations if r.hostname
                   for address in (r.ip, r.ip6) if address is not None)


def seed_leases(spec: NetworkSpec, current: str) -> str:
    """The lease file a starting HA server reads: its own lines, plus ``0 mac ip hostname *`` (expiry 0: never
    expires) for every IPv4 reservation it holds no line for, as Neutron writes. Seeded lines are not leases:
    the lease sync skips expiry 0; dnsmasq rewrites a line with the real expiry once it ACKs that client.
    DHCPv6 lines (after ``duid``) are kept as they are and not seeded."""
    lines = current.splitlines()
    v4_end = next((i for i, line in enumerate(lines) if line.startswith("duid ")), len(lines))
    known = {line.split()[1] for line in lines[:v4_end] if len(line.split()) >= 3}
    seeded = [f"0 {r.mac} {r.ip} {r.hostname or '*'} *" for r in spec.reservations
              if r.ip is not None and r.ip.version == 4 and r.mac not in known]
    return "".join(line + "\n" for line in [*lines[:v4_end], *seeded, *lines[v4_end:]])


def render_opts(spec: NetworkSpec) -> str:
    """``--dhcp-optsfile`` content: router, DNS servers and domain per subnet tag.

    An empty ``option:router`` stops dnsmasq from advertising itself as the router on
    subnets without a gateway (Neutron does the same).
    """
    lines = []
    for s in spec.dhcp_subnets:
        t = f"tag:{v.tag(s.tag)}"
        if s.cidr.version == 6:
            lines += _render_opts_v6(t, s)
            continue
        lines.append(f"{t},option:router,{s.gateway}" if s.gateway else f"{t},option:router")
        dns = ",".join(str(x) for x in (s.dns_servers or (s.dhcp_address, *s.peer_dhcp_addresses)))
        lines.append(f"{t},option:dns-server,{dns}")
        if s.domain:
            lines.append(f"{t},option:domain-name,{v.domain(s.domain)}")
    return "".join(line + "\n" for line in lines)


def _render_opts_v6(t: str, s: SubnetSpec) -> list[str]:
    """DHCPv6 options of an IPv6 subnet: DNS servers and search domain (no router option in DHCPv6: RAs say it)."""
    dns = ",".join(f"[{x}]" for x in (s.dns_servers or (s.dhcp_address, *s.peer_dhcp_addresses)))
    lines = [f"{t},option6:dns-server,{dns}"]
    if s.domain:
        lines.append(f"{t},option6:domain-search,{v.domain(s.domain)}")
    return lines


def write_atomic(path: Path, content: str, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``content`` atomically; return False if it was already equal.

    dnsmasq re-reads on SIGHUP and must never see a half-written file, hence temp + rename.
    Mode 0644 because dnsmasq has dropped to its own user when it re-reads.
    """
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return True
