"""Strict validators for every value that reaches a dnsmasq file, an argv or the kernel.

Defence in depth: the Django layer validates too, but dnsmasq's files are line- and
comma-separated, so one stray newline or comma from any caller would inject configuration
(Neutron strips newlines for this reason). Here we reject instead of strip, so the caller
learns about it. All regexes use ``fullmatch``: ``$`` alone would accept a trailing newline.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .errors import HostInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MIN_LEASE_SECONDS = 120  # dnsmasq silently raises shorter leases to 2 minutes

_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_TAG_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _shown(value: Any) -> str:
    return repr(value)[:80]


def hostname(value: Any, what: str = "hostname") -> str:
    """An RFC 1123 label (no dots): what an instance may call itself."""
    if not isinstance(value, str) or not _LABEL_RE.fullmatch(value):
        raise HostInputError(
            f"{what} {_shown(value)} is invalid: use 1-63 letters, digits or '-', "
            "not starting or ending with '-' (e.g. 'web-1')"
        )
    return value


def domain(value: Any) -> str:
    """A DNS domain: dot-separated RFC 1123 labels, at most 253 characters."""
    if not isinstance(value, str) or not value or len(value) > 253:
        raise HostInputError(f"domain {_shown(value)} is invalid: use e.g. 'tenant1.internal'")
    for label in value.split("."):
        if not _LABEL_RE.fullmatch(label):
            raise HostInputError(
                f"domain {_shown(value)} is invalid: each dot-separated part must be 1-63 "
                "letters, digits or '-' (e.g. 'tenant1.internal')"
            )
    return value


def mac(value: Any) -> str:
    """A unicast Ethernet address, returned lowercase (dnsmasq and the kernel agree on it)."""
    if not isinstance(value, str) or not _MAC_RE.fullmatch(value.lower()):
        raise HostInputError(f"MAC {_shown(value)} is invalid: use six hex pairs like '02:00:00:aa:bb:cc'")
    value = value.lower()
    if int(value[:2], 16) & 1:
        raise HostInputError(f"MAC {value} is a multicast address; the first octet must be even (e.g. 02)")
    return value


def tag(value: Any) -> str:
    """A dnsmasq tag name (used in ``set:``/``tag:``)."""
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
        raise HostInputError(f"tag {_shown(value)} is invalid: use lowercase letters, digits, '_' (e.g. 's1')")
    return value


def ip(value: Any, what: str = "address") -> IPAddress:
    """Parse an IP address from str or ipaddress object."""
    if isinstance(value, str) and value.isprintable():
        try:
            value = ipaddress.ip_address(value)
        except ValueError:
            pass
    # An IPv6 zone ("fe80::1%eth0") may hold any printable text, commas included: never write one to a file.
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and getattr(value, "scope_id", None) is None:
        return value
    raise HostInputError(f"{what} {_shown(value)} is not an IP address")


def network(value: Any) -> IPNetwork:
    """Parse a CIDR; must be the network address (192.168.1.0/24, not .5/24)."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    if isinstance(value, str) and value.isprintable():
        try:
            return ipaddress.ip_network(value)
        except ValueError:
            try:
                iface = ipaddress.ip_interface(value)
            except ValueError:
                pass
            else:
                raise HostInputError(
                    f"{value} is not a network address. Did you mean {iface.network}?"
                ) from None
    raise HostInputError(f"CIDR {_shown(value)} is invalid: use e.g. '192.168.1.0/24'")


IPV6_MODES = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")


def ipv6_modes(net: IPNetwork, ra_mode: Any, address_mode: Any) -> None:
    """Neutron's pairs: IPv4 has none; IPv6 has an address mode and an equal RA mode or none."""
    if net.version == 4:
        if ra_mode is not None or address_mode is not None:
            raise HostInputError(f"subnet {net}: IPv6 modes on an IPv4 subnet")
        return
    if address_mode not in IPV6_MODES or ra_mode not in (None, address_mode):
        raise HostInputError(f"subnet {net}: IPv6 modes {ra_mode!r}/{address_mode!r} are not a valid pair; "
                             f"use the same one of {', '.join(IPV6_MODES)} twice, or an address mode alone")
    if not 64 <= net.prefixlen <= 120 or (address_mode != "dhcpv6-stateful" and net.prefixlen != 64):
        raise HostInputError(f"subnet {net}: {address_mode} needs a /64 (DHCPv6 stateful /64-/120)")


def in_subnet(addr: IPAddress, net: IPNetwork, what: str) -> IPAddress:
    """``addr`` must be a usable host address of ``net``."""
    if addr.version != net.version or addr not in net:
        raise HostInputError(f"{what} {addr} is not inside {net}")
    if net.version == 4 and net.prefixlen < 31 and addr in (net.network_address, net.broadcast_address):
        raise HostInputError(f"{what} {addr} is the network or broadcast address of {net}")
    return addr
