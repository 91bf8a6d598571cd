"""What an instance learns from router advertisements: solicit one inside its namespace and decode M/O/A.

Why off the wire: the kernel keeps no copy of a received RA's M and O flags (no sysctl or netlink attribute shows
them), and dhcpcd runs only on DHCPv6 subnets, so its log cannot cover SLAAC. A raw ICMPv6 socket opened inside the
instance's namespace sends one Router Solicitation and reads the answer: the same RA the instance's kernel and
dhcpcd act on. dnsmasq answers a solicitation at once.

Also here: which of the instance's addresses came from where, read from the kernel's addresses alone.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

from . import netns

ICMPV6_RS, ICMPV6_RA, ND_OPT_PREFIX = 133, 134, 3
LINK_LOCAL = ipaddress.ip_network("fe80::/10")


@dataclass(frozen=True)
class AdvertisedPrefix:
    """One prefix information option: ``on_link`` (L) and ``autonomous`` (A: SLAAC allowed)."""

    prefix: str
    on_link: bool
    autonomous: bool


@dataclass(frozen=True)
class RouterAdvert:
    """The flags that decide what an instance does: ``managed`` (M: addresses from DHCPv6), ``other`` (O: only
    options from DHCPv6), the router lifetime (0: not a default router) and the prefixes."""

    source: str
    managed: bool
    other: bool
    router_lifetime: int
    prefixes: tuple[AdvertisedPrefix, ...]


def parse_ra(data: bytes, source: str) -> RouterAdvert | None:
    """Decode an ICMPv6 Router Advertisement (RFC 4861 §4.2); None if ``data`` is not one or is truncated."""
    if len(data) < 16 or data[0] != ICMPV6_RA:
        return None
    prefixes = []
    i = 16
    while i + 2 <= len(data) and data[i + 1]:
        end = i + data[i + 1] * 8
        if end > len(data):
            return None
        if data[i] == ND_OPT_PREFIX and data[i + 1] == 4:
            net = ipaddress.IPv6Network((socket.inet_ntop(socket.AF_INET6, data[i + 16:i + 32]), data[i + 2]),
                                        strict=False)
            prefixes.append(AdvertisedPrefix(str(net), bool(data[i + 3] & 0x80), bool(data[i + 3] & 0x40)))
        i = end
    return RouterAdvert(source, bool(data[5] & 0x80), bool(data[5] & 0x40), struct.unpack("!H", data[6:8])[0],
                        tuple(prefixes))


def solicit(ns: str, dev: str, timeout: float = 3.0) -> RouterAdvert | None:
    """Send a Router Solicitation from ``dev`` in ``ns`` and return the first RA heard there; None if none came."""
    def probe() -> RouterAdvert | None:
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)  # RFC 4861: hop limit 255
            s.sendto(bytes([ICMPV6_RS, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex(dev)))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data, peer = s.recvfrom(2000)
                except TimeoutError:
                    return None
                ra = parse_ra(data, peer[0].split("%")[0])
                if ra is not None:
                    return ra
            return None

    return netns.run_in(ns, probe)


def address_origin(address: str, prefixlen: int) -> str | None:
    """Where an instance's IPv6 address came from: ``link-local`` (fe80::/10, made by the kernel), ``DHCPv6``
    (dhcpcd adds IA_NA addresses as /128, the on-link route comes from the RA) or ``SLAAC`` (a /64 address built
    from an A=1 prefix, by the kernel or by dhcpcd). None for an IPv4 address."""
    ip = ipaddress.ip_address(address)
    if ip.version != 6:
        return None
    if ip in LINK_LOCAL:
        return "link-local"
    return "DHCPv6" if prefixlen == 128 else "SLAAC"
