"""The network's DHCP side: namespace ``qdhcp-N`` with a veth into the segment's bridge and one dnsmasq bound to
it, reading reservations and options from files in the network's state directory.

Reservation changes reload dnsmasq with SIGHUP after an atomic file replace, and :func:`reload` waits until
dnsmasq has re-read the files: a client renewed right after a bare SIGHUP could be answered from the old
reservations (see :func:`reload`).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import dnsmasq as dm
from .. import netns
from .. import validate as v
from ..config import HostConfig
from ..errors import HostError
from ..interface import HostScan, NetworkFound
from ..leases import read_leases
from ..naming import Names
from ..ops import AddrAdd, LinkUp, MakeDir, NetnsAdd, Op, Session, Sysctl, VethAdd, WriteFile, shell_exec_in
from ..process import PATH_ENV, Daemon, Supervisor, cmdline, kill, kill_all_in, run_in
from ..specs import NetworkSpec

NS_KIND = "qdhcp"
PROGRAM = dm.DnsmasqCommand.program
START_TIMEOUT = 10.0  # dnsmasq's first process exits once its sockets are bound (~3-6 ms, MEASURED.md)
RELOAD_TIMEOUT = 5.0


def daemon(n: Names, net_id: str) -> Daemon:
    """The network's dnsmasq as the supervisor recognises it."""
    return Daemon(PROGRAM, n.dhcp_ns(net_id), n.dnsmasq_pid(net_id))


def command(config: HostConfig, n: Names, spec: NetworkSpec) -> dm.DnsmasqCommand:
    """The dnsmasq argv description for ``spec``."""
    nid = spec.kernel_id
    return dm.command_for(
        spec, binary=config.dnsmasq, interface=n.dhcp_dev(nid), pid_file=n.dnsmasq_pid(nid),
        lease_file=n.leases(nid), hosts_file=n.hosts(nid), opts_file=n.opts(nid), log_file=n.dnsmasq_log(nid),
        addn_hosts_file=n.addn_hosts(nid),
    )


def plan(config: HostConfig, n: Names, spec: NetworkSpec) -> list[Op]:
    """Files, DHCP namespace, veth into the segment's bridge, addresses, dnsmasq (nothing without DHCP)."""
    nid = spec.kernel_id
    if not spec.dhcp_subnets:
        return []
    dhcp, dev = n.dhcp_ns(nid), n.dhcp_dev(nid)
    ops: list[Op] = [
        MakeDir(n.net_dir(nid)),
        WriteFile(n.hosts(nid), dm.render_hosts(spec)),
        WriteFile(n.opts(nid), dm.render_opts(spec)),
        *([WriteFile(n.addn_hosts(nid), dm.render_addn_hosts(spec))] if spec.ha else []),
        NetnsAdd(dhcp),
    ]
    # The DHCP namespace never autoconfigures from the RAs it (or anyone on the tenant's link) sends, as
    # Neutron's DHCP agent; and its link-local address skips DAD like its global ones (``nodad``): dnsmasq
    # sends its RAs from that address, and while it is tentative (~1-2 s after the port is made) they leave
    # with a global source that instances drop (RFC 4861 §6.1.2), so an instance made on a fresh network
    # waited for its RS retry 4 s later. Both off by default before the device exists, and on the device if
    # it already did.
    v6 = [Sysctl(dhcp, f"net.ipv6.conf.{which}.{key}", "0") for which in ("default", dev)
          for key in ("accept_ra", "accept_dad")] if spec.has_ipv6 else []
    ops += v6[:2]
    ops += [
        VethAdd(n.seg_ns(nid), n.dhcp_port(nid), dhcp, dev, master=n.bridge(nid)),
        *v6[2:],
        LinkUp(dhcp, "lo"),
        LinkUp(dhcp, dev),
    ]
    ops += [AddrAdd(dhcp, dev, str(s.dhcp_address), s.cidr.prefixlen, nodad=s.cidr.version == 6)
            for s in spec.dhcp_subnets]
    ops.append(RunDnsmasq(dhcp, command(config, n, spec), spec if spec.ha else None))
    return ops


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _logged_since(path: Path, offset: int, needle: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return needle in f.read()
    except FileNotFoundError:
        return False


def reload(pid: int, c: dm.DnsmasqCommand) -> None:
    """SIGHUP dnsmasq and return once it has re-read its hosts and opts files.

    Why wait: the signal is only a request, handled in dnsmasq's main loop. A reservation change is followed at
    once by the client's renew (``realise_instance``); when dnsmasq was still busy with that client's first
    exchange, it handled the renew's DHCPREQUEST before the SIGHUP, ACKed the old address from the reservations
    it still held, and the client kept it until its next renewal (half the lease time). Seen in dnsmasq's log:
    ``DHCPREQUEST .50`` / ``DHCPACK .50`` and only then ``read …/hosts``. dnsmasq logs ``read <file>`` for each
    file it re-reads, the opts file last, into our own log file: that line after the log's size at the signal
    is the acknowledgement (< 1 ms on an idle machine).
    """
    offset = _log_size(c.log_file)
    kill(pid, signal.SIGHUP)
    needle = f" {c.opts_file}".encode()  # "read FILE", or the reason it could not
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while not _logged_since(c.log_file, offset, needle):
        if cmdline(pid) is None:
            raise HostError(f"dnsmasq {pid} exited while reloading {c.hosts_file}; see {c.log_file}")
        if time.monotonic() > deadline:
            raise HostError(f"dnsmasq {pid} did not reload {c.hosts_file} within {RELOAD_TIMEOUT:.0f} s; "
                            f"see {c.log_file}")
        time.sleep(0.001)


@dataclass(frozen=True)
class RunDnsmasq(Op):
    """dnsmasq for one network, inside its DHCP namespace.

    Convergent: a live dnsmasq with the same argv is kept and reloaded if its hosts/opts files changed in this
    session (reservations reload without a restart); a different argv means a restart; a dead or foreign pid
    means a fresh start. ``seed`` (HA): the lease file is pre-seeded from it just before a start — never while
    dnsmasq runs, as it owns and rewrites that file; so a running HA server that lacks the line of a new
    reservation is restarted (stopped, seeded, started: a few ms, while its peer answers), else a client that
    leased from the peer loses its address when the peer dies (the survivor ignores a rebind it has no lease
    for: the three-agent node-loss drill saw exactly that deconfig).
    """

    ns: str
    command: dm.DnsmasqCommand
    seed: NetworkSpec | None = None

    def shell(self) -> str:
        return shell_exec_in(self.ns, self.command)

    def apply(self, s: Session) -> None:
        c = self.command
        d = Daemon(PROGRAM, self.ns, c.pid_file)
        pid = s.supervisor.running_as(d, c.argv())
        if pid is not None and self.seed is not None and unseeded(self.seed, c.lease_file):
            s.supervisor.stop([d])
            pid = None
        if pid is not None:
            if c.pid_file.parent in s.changed_dirs:
                reload(pid, c)
            return
        if not os.access(c.binary, os.X_OK):
            raise HostError(f"dnsmasq not installed at {c.binary}")
        if self.seed is not None:
            try:
                current = c.lease_file.read_text()
            except FileNotFoundError:
                current = ""
            dm.write_atomic(c.lease_file, dm.seed_leases(self.seed, current))
        try:
            s.supervisor.start(d, c, wait=True, timeout=START_TIMEOUT, fail=self.fail)
        except HostError as exc:
            # A dnsmasq that no pid file names any more (the state dir was removed behind our back) still
            # holds the DHCP port in this namespace: stop it, then start once more.
            if "Address already in use" not in str(exc) or not d.kill_strays():
                raise
            s.supervisor.start(d, c, wait=True, timeout=START_TIMEOUT, fail=self.fail)


def unseeded(spec: NetworkSpec, lease_file: Path) -> bool:
    """An HA server's lease file lacks the seeded (or real) line of one of the spec's reservations."""
    try:
        current = lease_file.read_text()
    except FileNotFoundError:
        current = ""
    return dm.seed_leases(spec, current) != current


def refresh(config: HostConfig, n: Names, spec: NetworkSpec) -> bool:
    """Replace the reservation/option files of a network that is up and reload dnsmasq if one changed; False
    when it is not up with exactly this spec's argv (then a full ensure is needed)."""
    nid = spec.kernel_id
    if not spec.dhcp_subnets or not netns.exists(n.seg_ns(nid)) or not netns.exists(n.dhcp_ns(nid)):
        return False
    c = command(config, n, spec)
    pid = daemon(n, nid).pid()
    if pid is None or cmdline(pid) != c.argv() or spec.ha and unseeded(spec, c.lease_file):
        return False
    hosts, opts = dm.render_hosts(spec), dm.render_opts(spec)  # validates before any write
    addn = dm.render_addn_hosts(spec) if spec.ha else None
    changed = dm.write_atomic(n.hosts(nid), hosts)
    if addn is not None:
        changed = dm.write_atomic(n.addn_hosts(nid), addn) or changed
    changed = dm.write_atomic(n.opts(nid), opts) or changed
    if changed:
        reload(pid, c)
        forget_stale_leases(n, spec)  # only a reservation change can make a lease stale
    return True


DHCP_RELEASE = "dhcp_release"  # Debian package dnsmasq-utils
FORGET_TIMEOUT = 5.0


def forget_leases(n: Names, net_id: str, leases: Iterable[tuple[str, str]]) -> int:
    """Make the network's dnsmasq drop these IPv4 ``(address, MAC)`` leases now; returns how many it was asked to.

    Why: the instance's udhcpc releases its lease when it is stopped, but not when it was killed, had not got
    its lease yet, or its DHCPRELEASE was lost. dnsmasq then keeps the lease until it expires, and refuses the
    address to the next instance IPAM gives it to: ``not using configured address … because it is leased to
    <old MAC>`` → ``no address available``, and that instance waits for a lease that never comes (seen in the
    soak drill). Neutron's DHCP agent runs ``dhcp_release`` on port delete for the same reason.

    A running dnsmasq gets a DHCPRELEASE from ``dhcp_release`` (on its own interface, inside its namespace), and
    this returns once dnsmasq logged it. A stopped dnsmasq reads its lease file when it starts: the entries are
    removed from the file instead (it owns no file while it is not running). Idempotent: an unknown lease is
    ignored by dnsmasq, an absent line is not there to remove. IPv4 only: ``dhcp_release6`` needs the client's
    DUID and IAID, which the database does not keep (left out).
    """
    wanted = [(str(v.ip(ip)), v.mac(mac).lower()) for ip, mac in leases]
    wanted = [(ip, mac) for ip, mac in wanted if ":" not in ip]
    if not wanted:
        return 0
    pid = daemon(n, net_id).pid()
    if pid is None:
        _drop_lease_lines(n.leases(net_id), set(wanted))
        return len(wanted)
    binary = shutil.which(DHCP_RELEASE, path=PATH_ENV)
    if binary is None:
        raise HostError(f"{DHCP_RELEASE} not installed (Debian package dnsmasq-utils)")
    log = n.dnsmasq_log(net_id)
    offset = _log_size(log)
    for ip, mac in wanted:
        r = run_in(n.dhcp_ns(net_id), [binary, n.dhcp_dev(net_id), ip, mac])
        if r.returncode != 0:
            raise HostError(f"{DHCP_RELEASE} {ip} {mac} failed: {(r.stderr or r.stdout).strip()}")
    # dnsmasq logs "DHCPRELEASE(dev) ip mac" for each, known or not: the last one is the acknowledgement.
    needle = f"DHCPRELEASE({n.dhcp_dev(net_id)}) {wanted[-1][0]} ".encode()
    deadline = time.monotonic() + FORGET_TIMEOUT
    while not _logged_since(log, offset, needle):
        if cmdline(pid) is None:
            return len(wanted)  # it exited: its lease file is handled at its next start like any other
        if time.monotonic() > deadline:
            raise HostError(f"dnsmasq {pid} did not log the release of {wanted[-1][0]} within "
                            f"{FORGET_TIMEOUT:.0f} s; see {log}")
        time.sleep(0.001)
    return len(wanted)


def forget_stale_leases(n: Names, spec: NetworkSpec) -> int:
    """:func:`forget_leases` for every IPv4 lease in the network's file that its reservations no longer back:
    a MAC with no reservation, or reserved on another address. What the database reserves is the truth, so a
    deleted instance's lease goes with its reservation wherever that change is realised (on every node with
    one of the network's DHCP servers), whether or not its client said goodbye. HA seed lines (expiry 0) are
    reservations and stay."""
    reserved = {r.mac.lower(): r.ip for r in spec.reservations}
    stale = [(str(e.ip), e.mac) for e in read_leases(n.leases(spec.kernel_id))
             if e.ip.version == 4 and e.expiry != 0
             and (e.mac.lower() not in reserved
                  or reserved[e.mac.lower()] is not None and str(reserved[e.mac.lower()]) != str(e.ip))]
    return forget_leases(n, spec.kernel_id, stale) if stale else 0


def _drop_lease_lines(path: Path, leases: set[tuple[str, str]]) -> None:
    """Remove the IPv4 lines ``expiry mac ip …`` naming one of ``leases`` from a lease file nobody is writing."""
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = [line for line in lines
            if not ((f := line.split()) and len(f) >= 3 and (f[2], f[1].lower()) in leases)]
    if len(kept) != len(lines):
        dm.write_atomic(path, "".join(kept))


def stop(supervisor: Supervisor, n: Names, net_ids: Iterable[str]) -> None:
    """Stop the networks' dnsmasqs and wait: a recreated network never races an exiting dnsmasq (< 1 ms each)."""
    supervisor.stop([daemon(n, nid) for nid in net_ids])


def remove(supervisor: Supervisor, n: Names, net_ids: list[str]) -> None:
    """Stop dnsmasq (and anything else left in the namespace), delete the namespace, then the state."""
    stop(supervisor, n, net_ids)
    kill_all_in([n.dhcp_ns(nid) for nid in net_ids])
    for nid in net_ids:
        netns.remove(n.dhcp_ns(nid))


def remove_state(n: Names, net_ids: Iterable[str]) -> None:
    """The network's state directory (leases, reservations, log)."""
    for nid in net_ids:
        shutil.rmtree(n.net_dir(nid), ignore_errors=True)


def scan(n: Names, scan: HostScan, namespaces: set[str], state_dirs: set[str]) -> None:
    """Record the DHCP namespaces and state directories found, and each network's verified dnsmasq pid."""
    for nid in namespaces:
        scan.networks.setdefault(nid, NetworkFound()).dhcp_ns = True
    for nid in state_dirs:
        scan.networks.setdefault(nid, NetworkFound()).state_dir = True
    for nid, found in scan.networks.items():
        found.dnsmasq_pid = daemon(n, nid).pid()
