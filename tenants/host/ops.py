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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns
from .dnsmasq import write_atomic
from .errors import HostError
from .process import Command, Supervisor

q = shlex.quote


def shell_command(argv: list[str]) -> str:
    """``argv`` as one shlex-quoted shell line."""
    return " ".join(q(a) for a in argv)


def shell_exec_in(ns: str, command: Command) -> str:
    """The shell line that starts ``command`` in ``ns``: ``ip netns exec NS env K=V… ARGV``."""
    # PATH is inherited from the person's shell; the rest are shown because they matter.
    env = [f"{k}={v}" for k, v in command.env.items() if k != "PATH"]
    return shell_command(["ip", "netns", "exec", ns, "env", *env, *command.argv()])


class Session:
    """Per-``ensure`` resources: one pyroute2 handle per namespace touched, closed at the end, and the driver's
    process supervisor.

    Handles are not cached across calls on purpose: an open netlink socket pins its
    namespace (and all its devices) in the kernel, which would defeat teardown and hide a
    namespace deleted behind our back. Creating one costs ~1.5 ms.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._handles: dict[str | None, IPRoute] = {}
        self._index: dict[tuple[str | None, str], int] = {}
        self.changed_dirs: set[Path] = set()

    def ipr(self, ns: str | None) -> IPRoute:
        """A handle in ``ns``; None: this process's own namespace (only a real-host underlay asks for it)."""
        h = self._handles.get(ns)
        if h is None:
            h = self._handles[ns] = IPRoute() if ns is None else IPRoute(use_socket=netns.netlink_socket(ns))
        return h

    def index(self, ns: str | None, ifname: str) -> int | None:
        """ifindex of ``ifname`` in ``ns``; positive answers are cached (~0.4 ms per lookup)."""
        key = (ns, ifname)
        if key in self._index:
            return self._index[key]
        found = self.ipr(ns).link_lookup(ifname=ifname)
        if found:
            self._index[key] = found[0]
        return found[0] if found else None

    def forget(self, ns: str | None, ifname: str) -> None:
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
        return shell_command(["mkdir", "-p", "-m", "755", str(self.path)])

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
        if write_atomic(self.path, self.content):
            s.changed_dirs.add(self.path.parent)


@dataclass(frozen=True)
class NetnsAdd(Op):
    """A network namespace (in-process unshare + bind mount, like ``ip netns add``)."""

    name: str

    def shell(self) -> str:
        return shell_command(["ip", "netns", "add", self.name])

    def apply(self, s: Session) -> None:
        netns.create(self.name)


@dataclass(frozen=True)
class LinkAddBridge(Op):
    """The L2 segment: a Linux bridge, created up (STP off, so ports forward at once)."""

    ns: str
    name: str

    def shell(self) -> str:
        return shell_command(["ip", "-n", self.ns, "link", "add", self.name, "up", "type", "bridge"])

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
        return shell_command(argv)

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
        return shell_command(["ip", "-n", self.ns, "link", "set", self.dev, "up"])

    def apply(self, s: Session) -> None:
        try:
            s.ipr(self.ns).link("set", ifname=self.dev, state="up")
        except NetlinkError as exc:
            raise self.fail(exc if exc.code != errno.ENODEV else f"device {self.dev} missing in {self.ns}") from exc


IFA_F_NODAD = 0x02  # linux/if_addr.h


@dataclass(frozen=True)
class AddrAdd(Op):
    """An address with prefix length on a device; already present is fine.

    ``nodad`` for infrastructure IPv6 addresses: usable at once, never "tentative" while dnsmasq binds to it.
    """

    ns: str
    dev: str
    address: str
    prefixlen: int
    nodad: bool = False

    def shell(self) -> str:
        argv = ["ip", "-n", self.ns, "addr", "add", f"{self.address}/{self.prefixlen}", "dev", self.dev]
        return shell_command([*argv, "nodad"] if self.nodad else argv)

    def apply(self, s: Session) -> None:
        self.add(s)

    def add(self, s: Session) -> bool:
        """Add the address; True if it was not there before (already present is fine, and False)."""
        idx = s.index(self.ns, self.dev)
        if idx is None:
            raise self.fail(f"device {self.dev} missing in {self.ns}")
        extra = {"flags": IFA_F_NODAD} if self.nodad else {}
        try:
            s.ipr(self.ns).addr("add", index=idx, address=self.address, prefixlen=self.prefixlen, **extra)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise self.fail(exc) from exc
            return False
        return True


@dataclass(frozen=True)
class Sysctl(Op):
    """One ``net.*`` sysctl inside a namespace (``/proc/sys/net`` is per network namespace)."""

    ns: str
    key: str
    value: str

    def shell(self) -> str:
        return shell_command(["ip", "netns", "exec", self.ns, "sysctl", "-qw", f"{self.key}={self.value}"])

    def apply(self, s: Session) -> None:
        path = "/proc/sys/" + self.key.replace(".", "/")

        def write() -> None:
            with open(path, "w") as f:
                f.write(self.value)

        try:
            netns.run_in(self.ns, write)
        except OSError as exc:
            raise self.fail(exc) from exc


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


@dataclass(frozen=True)
class RouteReplace(Op):
    """The default route via ``gateway`` on ``dev`` (replaced, so a changed gateway converges)."""

    ns: str
    dev: str
    gateway: str

    def shell(self) -> str:
        return shell_command(["ip", "-n", self.ns, "route", "replace", "default", "via", self.gateway,
                              "dev", self.dev])

    def apply(self, s: Session) -> None:
        idx = s.index(self.ns, self.dev)
        if idx is None:
            raise self.fail(f"device {self.dev} missing in {self.ns}")
        s.ipr(self.ns).route("replace", dst="default", gateway=self.gateway, oif=idx)


@dataclass(frozen=True)
class PrefixRouteReplace(Op):
    """A route to ``dst`` via ``gateway`` on ``dev`` (replaced, so a changed next hop converges)."""

    ns: str
    dev: str
    dst: str  # a prefix, e.g. 2001:db8:1::/64
    gateway: str

    def shell(self) -> str:
        return shell_command(["ip", "-n", self.ns, "route", "replace", self.dst, "via", self.gateway,
                              "dev", self.dev])

    def apply(self, s: Session) -> None:
        idx = s.index(self.ns, self.dev)
        if idx is None:
            raise self.fail(f"device {self.dev} missing in {self.ns}")
        s.ipr(self.ns).route("replace", dst=self.dst, gateway=self.gateway, oif=idx)


# -- overlay ops (kinds/overlay.py) ---------------------------------------------------------------------
VXLAN_PORT = 4789  # IANA's; the socket is opened in the underlay namespace when the device goes up
FLOOD_MAC = "00:00:00:00:00:00"  # the FDB entry a VXLAN device floods broadcast/unknown frames along


@dataclass(frozen=True)
class LinkMtu(Op):
    """A device's MTU: underlay veths carry 1550 so that full 1500-byte tenant frames fit the VXLAN header
    (measured: a 1500 underlay silently loses 1514-byte frames)."""

    ns: str
    dev: str
    mtu: int

    def shell(self) -> str:
        return shell_command(["ip", "-n", self.ns, "link", "set", self.dev, "mtu", str(self.mtu)])

    def apply(self, s: Session) -> None:
        idx = s.index(self.ns, self.dev)
        if idx is None:
            raise self.fail(f"device {self.dev} missing in {self.ns}")
        s.ipr(self.ns).link("set", index=idx, mtu=self.mtu)


@dataclass(frozen=True)
class VxlanAdd(Op):
    """A VXLAN device created from the underlay namespace ``ul_ns`` straight into ``ns``, enslaved and up.

    Created from the underlay, its UDP socket lives there and never in the root namespace; ``nolearning``
    because the flood list comes from the database. An existing device with other settings is rebuilt.
    ``ul_ns`` None: the host's own namespace, the real-host underlay of a deployment (``NETDASH_UNDERLAY=host``),
    which tests and the demo never use: then the socket is the host's, on its interface ``ul_dev``.
    """

    ul_ns: str | None
    ul_dev: str
    ns: str
    name: str
    vni: int
    local: str
    master: str

    def shell(self) -> str:
        where = ["-n", self.ul_ns] if self.ul_ns is not None else []
        add = ["ip", *where, "link", "add", self.name, "netns", self.ns, "type", "vxlan", "id",
               str(self.vni), "local", self.local, "dev", self.ul_dev, "dstport", str(VXLAN_PORT), "nolearning"]
        up = ["ip", "-n", self.ns, "link", "set", self.name, "master", self.master, "up"]
        return f"{shell_command(add)} && {shell_command(up)}"

    def _matches(self, s: Session, idx: int) -> bool:
        info = s.ipr(self.ns).get_links(idx)[0].get_attr("IFLA_LINKINFO")
        data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
        return (info is not None and info.get_attr("IFLA_INFO_KIND") == "vxlan" and data is not None
                and data.get_attr("IFLA_VXLAN_ID") == self.vni and data.get_attr("IFLA_VXLAN_LOCAL") == self.local)

    def apply(self, s: Session) -> None:
        master = s.index(self.ns, self.master)
        if master is None:
            raise self.fail(f"bridge {self.master} missing in {self.ns}")
        idx = s.index(self.ns, self.name)
        if idx is not None and not self._matches(s, idx):
            s.ipr(self.ns).link("del", index=idx)
            s.forget(self.ns, self.name)
            idx = None
        if idx is None:
            ul_dev = s.index(self.ul_ns, self.ul_dev)
            if ul_dev is None:
                raise self.fail(f"underlay device {self.ul_dev} missing in {self.ul_ns or 'the host namespace'}")
            fd = netns.ns_fd(self.ns)
            try:
                s.ipr(self.ul_ns).link("add", ifname=self.name, kind="vxlan", vxlan_id=self.vni,
                                       vxlan_local=self.local, vxlan_link=ul_dev, vxlan_port=VXLAN_PORT,
                                       vxlan_learning=0, net_ns_fd=fd)
            finally:
                os.close(fd)
            idx = s.index(self.ns, self.name)
            if idx is None:
                raise self.fail(f"{self.name} did not appear in {self.ns}")
        s.ipr(self.ns).link("set", index=idx, master=master, state="up")


@dataclass(frozen=True)
class FloodList(Op):
    """Exactly these flood entries (``00:00:00:00:00:00 dst <peer VTEP>``) on a VXLAN device: missing ones are
    appended, others deleted (the diff of ``bridge fdb show dev``)."""

    ns: str
    dev: str
    peers: tuple[str, ...]

    def shell(self) -> str:
        return "\n".join(shell_command(["bridge", "-n", self.ns, "fdb", "append", FLOOD_MAC, "dev", self.dev,
                                        "dst", peer]) for peer in self.peers) or ":"

    def present(self, s: Session) -> set[str]:
        idx = s.index(self.ns, self.dev)
        return {entry.get_attr("NDA_DST") for entry in s.ipr(self.ns).fdb("dump", ifindex=idx)
                if entry["ifindex"] == idx and entry.get_attr("NDA_LLADDR") == FLOOD_MAC
                and entry.get_attr("NDA_DST")}

    def apply(self, s: Session) -> None:
        idx = s.index(self.ns, self.dev)
        if idx is None:
            raise self.fail(f"device {self.dev} missing in {self.ns}")
        present, wanted = self.present(s), set(self.peers)
        ipr = s.ipr(self.ns)
        for peer in sorted(wanted - present):
            ipr.fdb("append", ifindex=idx, lladdr=FLOOD_MAC, dst=peer)
        for peer in sorted(present - wanted):
            ipr.fdb("del", ifindex=idx, lladdr=FLOOD_MAC, dst=peer)
