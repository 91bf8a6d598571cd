"""dnsmasq lease files: parsing, and a watcher that turns their changes into events.

Why a file watcher and not ``--dhcp-script``: the script costs a helper process per dnsmasq
(~1.4 MB RSS, MEASURED.md) against a ≤1.5 MB-per-network budget, while ONE inotify instance
can watch every network's state directory (``fs.inotify.max_user_instances`` is only 128,
watches per instance are plentiful).

How dnsmasq writes the file matters: it keeps the lease file open and rewrites it in place
(``rewind``, ``ftruncate``, ``fprintf``…, ``fflush``, ``fsync``), so there is no rename to
catch. We watch ``IN_MODIFY`` (plus ``IN_CLOSE_WRITE``/``IN_MOVED_TO``/``IN_CREATE`` for a
fresh file) on the directory, wait for a short quiet period so we never parse the file
between the truncate and the write, then diff against the previous snapshot.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import select
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import HostError
from .validate import IPAddress

LEASE_FILE_NAME = "leases"


@dataclass(frozen=True)
class DnsmasqLease:
    """One line of a dnsmasq lease file: ``expiry mac ip hostname clientid`` (IPv4), or after the ``duid`` line
    ``expiry iaid ip hostname client-duid`` (DHCPv6; the MAC is read from the client's link-layer DUID)."""

    expiry: int  # epoch seconds; 0 means infinite
    mac: str
    ip: IPAddress
    hostname: str | None
    client_id: str | None  # the IPv4 client id, or the DHCPv6 client's DUID
    iaid: int | None = None  # DHCPv6 identity association id


def mac_from_duid(duid: str) -> str | None:
    """The Ethernet MAC inside a DUID-LLT (type 1) or DUID-LL (type 3), as dnsmasq writes it (hex with colons);
    None for other DUIDs: such a client cannot be matched to an instance (our clients are directly connected)."""
    try:
        raw = bytes.fromhex(duid.replace(":", ""))
    except ValueError:
        return None
    kind, hwtype = int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:4], "big")
    mac = raw[8:] if kind == 1 else raw[4:] if kind == 3 else b""
    if hwtype != 1 or len(mac) != 6:
        return None
    return ":".join(f"{b:02x}" for b in mac)


def parse_leases(text: str) -> list[DnsmasqLease]:
    """Parse a dnsmasq lease file; malformed lines, the server's ``duid`` line and DHCPv6 leases whose client
    DUID carries no MAC are skipped."""
    out = []
    v6 = False  # dnsmasq writes the DHCPv6 leases after its "duid SERVER-DUID" line
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["duid"]:
            v6 = True
            continue
        if len(parts) < 4:
            continue
        try:
            expiry = int(parts[0])
            ip = ipaddress.ip_address(parts[2])
            iaid = int(parts[1]) if v6 else None
        except ValueError:
            continue
        host = None if parts[3] == "*" else parts[3]
        cid = parts[4] if len(parts) > 4 and parts[4] != "*" else None
        mac = mac_from_duid(cid or "") if v6 else parts[1].lower()
        if mac is None or ip.version != (6 if v6 else 4):
            continue
        out.append(DnsmasqLease(expiry, mac, ip, host, cid, iaid))
    return out


def read_leases(path: Path) -> list[DnsmasqLease]:
    """Leases currently in ``path`` (empty if the file does not exist yet)."""
    try:
        return parse_leases(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return []


@dataclass(frozen=True)
class LeaseFileChange:
    """A change of one lease: ``add``, ``renew`` (expiry or hostname changed) or ``del``."""

    kind: str
    network: str
    mac: str
    ip: IPAddress
    hostname: str | None
    expiry: int


def diff_leases(network: str, old: list[DnsmasqLease], new: list[DnsmasqLease]) -> list[LeaseFileChange]:
    """Events turning ``old`` into ``new``; leases are keyed by (mac, ip)."""
    before = {(x.mac, x.ip): x for x in old}
    after = {(x.mac, x.ip): x for x in new}
    events = []
    for key, x in before.items():
        if key not in after:
            events.append(LeaseFileChange("del", network, x.mac, x.ip, x.hostname, x.expiry))
    for key, x in after.items():
        y = before.get(key)
        if y is None:
            events.append(LeaseFileChange("add", network, x.mac, x.ip, x.hostname, x.expiry))
        elif (y.expiry, y.hostname) != (x.expiry, x.hostname):
            events.append(LeaseFileChange("renew", network, x.mac, x.ip, x.hostname, x.expiry))
    return events


# --- inotify via ctypes: no extra dependency -------------------------------------------------
IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF

_libc = ctypes.CDLL(None, use_errno=True)


class LeaseWatcher:
    """Watch many networks' lease files with one inotify instance and yield lease events.

    Usage::

        with LeaseWatcher() as w:
            w.add("1a2b3c4d", names.net_dir("1a2b3c4d"))
            for change in w.poll(timeout=1.0):
                ...

    ``add`` takes a snapshot first, so only changes after it are reported. ``fileno()``
    allows integration in a select/asyncio loop.
    """

    def __init__(self, quiet: float = 0.003) -> None:
        self.quiet = quiet
        self._fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            err = ctypes.get_errno()
            raise HostError(f"cannot create inotify instance: {os.strerror(err)} (fs.inotify.max_user_instances?)")
        self._wd_net: dict[int, str] = {}
        self._net_wd: dict[str, int] = {}
        self._dirs: dict[str, Path] = {}
        self._snap: dict[str, list[DnsmasqLease]] = {}

    def fileno(self) -> int:
        return self._fd

    def add(self, network: str, state_dir: Path) -> None:
        """Start watching ``state_dir/leases`` of ``network`` (the directory must exist)."""
        state_dir = Path(state_dir)
        wd = _libc.inotify_add_watch(self._fd, str(state_dir).encode(), _MASK)
        if wd < 0:
            err = ctypes.get_errno()
            raise HostError(f"cannot watch {state_dir}: {os.strerror(err)}")
        self._wd_net[wd] = network
        self._net_wd[network] = wd
        self._dirs[network] = state_dir
        self._snap[network] = read_leases(state_dir / LEASE_FILE_NAME)

    def remove(self, network: str) -> None:
        """Stop watching ``network``; unknown or already-deleted directories are fine."""
        wd = self._net_wd.pop(network, None)
        self._dirs.pop(network, None)
        self._snap.pop(network, None)
        if wd is not None:
            self._wd_net.pop(wd, None)
            _libc.inotify_rm_watch(self._fd, wd)

    def _drain(self) -> set[str]:
        nets: set[str] = set()
        while True:
            try:
                buf = os.read(self._fd, 65536)
            except BlockingIOError:
                return nets
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            off = 0
            while off < len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
                off += _EVENT.size + length
                net = self._wd_net.get(wd)
                if net is None:
                    continue
                if mask & (IN_IGNORED | IN_DELETE_SELF):
                    self._wd_net.pop(wd, None)
                    self._net_wd.pop(net, None)
                    nets.add(net)
                elif name == LEASE_FILE_NAME.encode():
                    nets.add(net)

    def poll(self, timeout: float | None = 0.0) -> list[LeaseFileChange]:
        """Wait up to ``timeout`` seconds for changes; return the resulting events."""
        r, _, _ = select.select([self._fd], [], [], timeout)
        if not r:
            return []
        nets = self._drain()
        # Quiet period: dnsmasq truncates then writes; parse only after it has finished.
        while True:
            r, _, _ = select.select([self._fd], [], [], self.quiet)
            if not r:
                break
            nets |= self._drain()
        events: list[LeaseFileChange] = []
        for net in sorted(nets):
            d = self._dirs.get(net)
            if d is None:
                continue
            new = read_leases(d / LEASE_FILE_NAME)
            events += diff_leases(net, self._snap.get(net, []), new)
            self._snap[net] = new
        return events

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LeaseWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
