"""Host work as a list of small operation objects.

Each operation knows two things: ``apply(session)`` performs it idempotently (pyroute2 or a
spawned process), and ``shell()`` returns the command a person would type for the same
effect. Both come from the same fields, so the commands shown to a learner cannot drift
from what the driver executes; a test replays :func:`transcript` with ``bash -e`` on a fresh
prefix and checks the result leases an address.

``shell()`` is a *fresh-host* transcript (``ip netns add`` fails if the namespace exists);
``apply`` is convergent: it tolerates what already exists and repairs what is half-built.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import dnsmasq as dm
from . import netns
from .dhcp_client import UdhcpcCommand
from .errors import HostError

q = shlex.quote


def _cmd(argv: list[str]) -> str:
    return " ".join(q(a) for a in argv)


def _env_prefix(env: dict[str, str]) -> list[str]:
    # PATH is inherited from the person's shell; the rest are shown because they matter.
    return ["env", *(f"{k}={v}" for k, v in env.items() if k != "PATH")]


class Session:
    """Per-``ensure`` resources: one pyroute2 handle per namespace touched, closed at the end.

    Handles are not cached across calls on purpose: an open netlink socket pins its
    namespace (and all its devices) in the kernel, which would defeat teardown and hide a
    namespace deleted behind our back. Creating one costs ~1.5 ms.
    """

    def __init__(self) -> None:
        self._handles: dict[str, IPRoute] = {}
        self._index: dict[tuple[str, str], int] = {}
        self.changed_dirs: set[Path] = set()
        self.started: list[int] = []

    def ipr(self, ns: str) -> IPRoute:
        h = self._handles.get(ns)
        if h is None:
            h = self._handles[ns] = IPRoute(use_socket=netns.netlink_socket(ns))
        return h

    def index(self, ns: str, ifname: str) -> int | None:
        """ifindex of ``ifname`` in ``ns``; positive answers are cached (~0.4 ms per lookup)."""
        key = (ns, ifname)
        if key in self._index:
            return self._index[key]
        found = self.ipr(ns).link_lookup(ifname=ifname)
        if found:
            self._index[key] = found[0]
        return found[0] if found else None

    def forget(self, ns: str, ifname: str) -> None:
        self._index.pop((ns, ifname), None)

    def close(self) -> None:
        for h in self._handles.values():
            with contextlib.suppress(Exception):  # closing must not mask the real error
                h.close()
        self._handles.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Op:
    """Base: one step of host work."""

    def shell(self) -> str:
        raise NotImplementedError

    def apply(self, s: Session) -> None:
        raise NotImplementedError

    def fail(self, exc: BaseException | str) -> HostError:
        """A readable error naming the equivalent command."""
        if isinstance(exc, NetlinkError):
            reason = os.strerror(exc.code) if exc.code else str(exc)
        else:
            reason = str(exc)
        return HostError(f"{reason} (while running: {self.shell()})")


@dataclass(frozen=True)
class MakeDir(Op):
    """A state directory; 0755 because dnsmasq re-reads its files after dropping to its own user."""

    path: Path

    def shell(self) -> str:
        return _cmd(["mkdir", "-p", "-m", "755", str(self.path)])

    def apply(self, s: Session) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o755)  # noqa: S103 - dnsmasq's own user reads these files


@dataclass(frozen=True)
class WriteFile(Op):
    """Atomically replace a file; a changed file marks its directory for a reload."""

    path: Path
    content: str

    def shell(self) -> str:
        lines = self.content.splitlines()
        if not lines:
            return f": > {q(str(self.path))}"
        return "printf '%s\\n' " + " ".join(q(x) for x in lines) + f" > {q(str(self.path))}"

    def apply(self, s: Session) -> None:
        if dm.write_atomic(self.path, self.content):
            s.changed_dirs.add(self.path.parent)


@dataclass(frozen=True)
class NetnsAdd(Op):
    """A network namespace (in-process unshare + bind mount, like ``ip netns add``)."""

    name: str

    def shell(self) -> str:
        return _cmd(["ip", "netns", "add", self.name])

    def apply(self, s: Session) -> None:
        netns.create(self.name)


@dataclass(frozen=True)
class LinkAddBridge(Op):
    """The L2 segment: a Linux bridge, created up (STP off, so ports forward at once)."""

    ns: str
    name: str

    def shell(self) -> str:
        return _cmd(["ip", "-n", self.ns, "link", "add", self.name, "up", "type", "bridge"])

    def apply(self, s: Session) -> None:
        ipr = s.ipr(self.ns)
        try:
            ipr.link("add", ifname=self.name, kind="bridge", state="up")
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise self.fail(exc) from exc
            ipr.link("set", index=s.index(self.ns, self.name), state="up")


@dataclass(frozen=True)
class VethAdd(Op):
    """A veth pair created directly in its two namespaces (a move costs ~17 ms).

    ``name`` lives in ``ns`` (enslaved to ``master`` and up); ``peer`` lives in ``peer_ns``
    with ``peer_mac`` (the instance's MAC, or kernel-random). Nothing is ever created in
    the root namespace: both ends are named namespaces.
    """

    ns: str
    name: str
    peer_ns: str
    peer: str
    master: str | None = None
    peer_mac: str | None = None

    def shell(self) -> str:
        argv = ["ip", "-n", self.ns, "link", "add", self.name]
        if self.master:
            argv += ["master", self.master]
        argv += ["up", "type", "veth", "peer", "name", self.peer]
        if self.peer_mac:
            argv += ["address", self.peer_mac]
        argv += ["netns", self.peer_ns]
        return _cmd(argv)

    def _peer_ok(self, s: Session) -> bool:
        idx = s.index(self.peer_ns, self.peer)
        if idx is None:
            return False
        if self.peer_mac is None:
            return True
        link = s.ipr(self.peer_ns).get_links(idx)[0]
        return link.get_attr("IFLA_ADDRESS") == self.peer_mac

    def _add(self, s: Session, master_idx: int | None) -> None:
        peer: dict[str, Any] = {"ifname": self.peer}
        if self.peer_mac:
            peer["address"] = self.peer_mac
        fd = netns.ns_fd(self.peer_ns)
        try:
            peer["net_ns_fd"] = fd
            kw: dict[str, Any] = {"ifname": self.name, "kind": "veth", "state": "up", "peer": peer}
            if master_idx is not None:
                kw["master"] = master_idx
            s.ipr(self.ns).link("add", **kw)
        finally:
            os.close(fd)

    def apply(self, s: Session) -> None:
        master_idx = None
        if self.master:
            master_idx = s.index(self.ns, self.master)
            if master_idx is None:
                raise self.fail(f"bridge {self.master} missing in {self.ns}")
        try:
            self._add(s, master_idx)  # fast path: fresh host
            return
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise self.fail(exc) from exc
        # Something by one of the two names exists: keep a correct pair, rebuild anything else.
        ipr = s.ipr(self.ns)
        idx = s.index(self.ns, self.name)
        if idx is not None:
            if self._peer_ok(s):
                kw: dict[str, Any] = {"state": "up"}
                if master_idx is not None:
                    kw["master"] = master_idx
                ipr.link("set", index=idx, **kw)
                return
            ipr.link("del", index=idx)  # wrong MAC or half-built: rebuild the pair
            s.forget(self.ns, self.name)
        stale = s.index(self.peer_ns, self.peer)
        if stale is not None:
            s.ipr(self.peer_ns).link("del", index=stale)
            s.forget(self.peer_ns, self.peer)
        try:
            self._add(s, master_idx)
        except NetlinkError as exc:
            raise self.fail(exc) from exc


@dataclass(frozen=True)
class LinkUp(Op):
    """Set a device up."""

    ns: str
    dev: str

    def shell(self) -> str:
        return _cmd(["ip", "-n", self.ns, "link", "set", self.dev, "up"])

    def apply(self, s: Session) -> None:
        try:
            s.ipr(self.ns).link("set", ifname=self.dev, state="up")
        except NetlinkError as exc:
            raise self.fail(exc if exc.code != errno.ENODEV else f"device {self.dev} missing in {self.ns}") from exc


@dataclass(frozen=True)
class AddrAdd(Op):
    """An address with prefix length on a device; already present is fine."""

    ns: str
    dev: str
    address: str
    prefixlen: int

    def shell(self) -> str:
        return _cmd(["ip", "-n", self.ns, "addr", "add", f"{self.address}/{self.prefixlen}", "dev", self.dev])

    def apply(self, s: Session) -> None:
        idx = s.index(self.ns, self.dev)
        if idx is None:
            raise self.fail(f"device {self.dev} missing in {self.ns}")
        try:
            s.ipr(self.ns).addr("add", index=idx, address=self.address, prefixlen=self.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise self.fail(exc) from exc


def wait_gone(pid: int, timeout: float = 2.0) -> None:
    """Wait until ``pid`` has exited (not our child, so poll /proc; zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while dm.cmdline(pid) is not None:
        if time.monotonic() > deadline:
            dm.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.001)


def _kill_in_ns(ns: str, program: str) -> bool:
    """SIGKILL every ``program`` process running in namespace ``ns``; True if there was one."""
    inode = netns.inode(ns)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not netns.proc_in_ns(int(entry), inode):
            continue
        argv = dm.cmdline(int(entry))
        if argv and program in (os.path.basename(argv[0]), argv[1] if len(argv) > 1 else ""):
            pids.append(int(entry))
    for pid in pids:
        dm.kill(pid, signal.SIGKILL)
    for pid in pids:
        wait_gone(pid)
    return bool(pids)


def _first_exit(p: subprocess.Popen[bytes], timeout: float, op: Op) -> str:
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise op.fail(f"did not daemonise within {timeout:.0f} s") from None
    text = out.decode(errors="replace").strip()
    if p.returncode != 0:
        raise op.fail(text or f"exit status {p.returncode}")
    return text


@dataclass(frozen=True)
class RunDnsmasq(Op):
    """dnsmasq for one network, inside its DHCP namespace.

    Convergent: a live dnsmasq with the same argv is kept and sent SIGHUP if its hosts/opts
    files changed in this session (reservations reload without a restart); a different argv
    means a restart; a dead or foreign pid means a fresh start.
    """

    ns: str
    command: dm.DnsmasqCommand = field(compare=True)

    def shell(self) -> str:
        return _cmd(["ip", "netns", "exec", self.ns, *_env_prefix(self.command.env), *self.command.argv()])

    def apply(self, s: Session) -> None:
        c = self.command
        argv = c.argv()
        stale = dm.stale_pid(c.pid_file, self.ns, "dnsmasq")
        if stale is not None:
            dm.kill(stale, signal.SIGKILL)
            wait_gone(stale)
        pid = dm.live_pid(c.pid_file, self.ns, "dnsmasq")
        if pid is not None:
            if dm.cmdline(pid) == argv:
                if c.pid_file.parent in s.changed_dirs:
                    dm.kill(pid, signal.SIGHUP)
                return
            dm.kill(pid)
            wait_gone(pid)
        if not os.access(c.binary, os.X_OK):
            raise HostError(f"dnsmasq not installed at {c.binary}")
        p = netns.spawn(self.ns, argv, c.env)
        try:
            _first_exit(p, 10.0, self)
        except HostError as exc:
            # A dnsmasq that no pid file names any more (the state dir was removed behind our back) still
            # holds the DHCP port in this namespace: stop it, then start once more.
            if "Address already in use" not in str(exc) or not _kill_in_ns(self.ns, "dnsmasq"):
                raise
            p = netns.spawn(self.ns, argv, c.env)
            _first_exit(p, 10.0, self)
        pid = dm.read_pid(c.pid_file)
        if pid is not None:
            s.started.append(pid)


_unwaited: list[subprocess.Popen[bytes]] = []
# pid file -> the first process of a DHCP client this process started without waiting. udhcpc forks into the
# background after its lease (or after giving up) and the daemon then rewrites the pid file: in between, the
# file names a process that has exited, and a second convergence in that window (a batch job, then the
# instance's own job) started a second client for the same instance (tests/faults/test_load.py saw 51 for 50).
_starting: dict[Path, subprocess.Popen[bytes]] = {}


def client_starting(pid_file: Path) -> bool:
    """True while the client this process started for ``pid_file`` is still in its first process; once that
    has exited, wait (≤ 0.2 s) until the pid file names its daemon, so the caller's pid check sees it."""
    p = _starting.get(pid_file)
    if p is None:
        return False
    if p.poll() is None:
        return True
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        pid = dm.read_pid(pid_file)
        if pid is not None and pid != p.pid and dm.cmdline(pid) is not None:
            break
        time.sleep(0.002)
    _starting.pop(pid_file, None)
    return False


def forget_started(pid_file: Path) -> None:
    """The client was stopped on purpose: a new one may start at once."""
    _starting.pop(pid_file, None)


def _reap() -> None:
    """Collect the exit status of DHCP clients started without waiting (no zombies left behind)."""
    _unwaited[:] = [p for p in _unwaited if p.poll() is None]


@dataclass(frozen=True)
class RunUdhcpc(Op):
    """The instance's DHCP client; returns once it holds a lease or went to background.

    With ``wait=False`` it returns as soon as the client is started (same argv, so a later convergent run keeps
    it): the DHCP exchange (~110 ms with udhcpc, mostly kernel RCU grace periods) then overlaps the caller's
    next work, and the lease reaches the database through the lease watcher. The agent's jobs use this, so a
    burst of instances on one network is not serialised on each client's DHCP exchange.
    """

    ns: str
    command: UdhcpcCommand
    wait: bool = field(default=True, compare=False)

    def shell(self) -> str:
        return _cmd(["ip", "netns", "exec", self.ns, *_env_prefix(self.command.env), *self.command.argv()])

    def apply(self, s: Session) -> None:
        c = self.command
        argv = c.argv()
        stale = dm.stale_pid(c.pid_file, self.ns, "udhcpc")
        if stale is not None:
            dm.kill(stale, signal.SIGKILL)
            wait_gone(stale)
        pid = dm.live_pid(c.pid_file, self.ns, "udhcpc")
        if pid is not None:
            if dm.cmdline(pid) == argv:
                return  # it renews by itself
            dm.kill(pid)
            wait_gone(pid)
        elif client_starting(c.pid_file):
            return  # started moments ago, still leasing (or forking into the background)
        if not os.access(c.busybox, os.X_OK):
            raise HostError(f"busybox (for udhcpc) not installed at {c.busybox}")
        if not os.access(c.script, os.X_OK):
            raise HostError(f"udhcpc script {c.script} is not executable (chmod 755 it)")
        if not self.wait:
            _reap()
            p = netns.spawn(self.ns, argv, c.env, log=c.log_file or Path(os.devnull))
            _unwaited.append(p)  # its first process exits once leased (or backgrounded); reaped later
            _starting[c.pid_file] = p
            s.started.append(p.pid)
            return
        p = netns.spawn(self.ns, argv, c.env)
        text = _first_exit(p, c.first_exit_timeout, self)
        if text and c.log_file is not None:
            with open(c.log_file, "a") as f:
                f.write(text + "\n")
        # The daemon writes its own pid just after the first process exits.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            pid = dm.live_pid(c.pid_file, self.ns, "udhcpc")
            if pid is not None and pid != p.pid:
                s.started.append(pid)
                return
            time.sleep(0.001)
        raise self.fail("udhcpc did not keep running")


def transcript(ops: list[Op]) -> list[str]:
    """The shell commands equivalent to ``ops``, in order (each shlex-quoted)."""
    return [op.shell() for op in ops]


def apply_all(ops: list[Op], s: Session) -> None:
    """Apply ``ops`` in order; netlink errors become :class:`HostError` naming the command."""
    for op in ops:
        try:
            op.apply(s)
        except HostError:
            raise
        except NetlinkError as exc:
            raise op.fail(exc) from exc
        except OSError as exc:
            raise op.fail(exc) from exc
