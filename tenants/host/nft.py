"""A router's NAT as one nftables table, rendered from a frozen description and compared with the live one.

Why one table replaced whole: ``nft -f`` applies a file as one transaction, so ``table … {}`` (create if
missing) + ``delete table …`` + the full table leaves either the old rules or the new ones, never a mix, and
needs no diff. The rendering is exactly the text ``nft list table`` prints back (tabs, blank lines between
chains, ``priority dstnat``), counters aside: so :func:`canonical` of the live text equals :func:`render` of the
description when nothing changed behind our back, and a flushed chain shows up as a difference.

Rules (Neutron's L3 agent in nftables form, ``neutron/agent/l3/router_info.py``):

* per floating IP: DNAT to the fixed address in prerouting and output, SNAT of the fixed address out of ``qg``;
* the attached subnets SNAT to the router's external address out of ``qg`` (only with ``snat``);
* hairpin: a DNATed packet that did not enter through ``qg`` (a neighbour reaching a floating IP from inside) is
  SNATed to the router's external address, so the reply comes back through the router;
* nothing else: east-west traffic between attached subnets is never translated.

Every value is an ``ipaddress`` object or a device name from :mod:`.naming`; nothing raw reaches a rule.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

TABLE = "netdash"
_COUNTER_RE = re.compile(r"counter packets \d+ bytes \d+")
_DNAT_RE = re.compile(r"^\t\tip daddr (\S+) counter dnat to (\S+)$", re.M)


@dataclass(frozen=True)
class NatTable:
    """What one router translates."""

    gateway_dev: str
    external: ipaddress.IPv4Address | None  # the router's own external address; None: no gateway, no NAT
    snat_sources: tuple[ipaddress.IPv4Network, ...] = ()
    floating_ips: tuple[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address], ...] = ()  # (floating, fixed)


def _chain(name: str, hook: str, priority: str, rules: list[str]) -> str:
    head = f"\tchain {name} {{\n\t\ttype nat hook {hook} priority {priority}; policy accept;\n"
    return head + "".join(f"\t\t{r}\n" for r in rules) + "\t}\n"


def render(t: NatTable) -> str:
    """The table as ``nft list table`` prints it (without counter values)."""
    g = t.gateway_dev
    dnat = [f"ip daddr {fip} counter dnat to {fixed}" for fip, fixed in t.floating_ips]
    post = [f'oifname "{g}" ip saddr {fixed} counter snat to {fip}' for fip, fixed in t.floating_ips]
    if t.external is not None:
        post += [f'oifname "{g}" ip saddr {net} counter snat to {t.external}' for net in t.snat_sources]
        if t.floating_ips:
            post.append(f'iifname != "{g}" ct status dnat counter snat to {t.external}')
    chains = [
        _chain("prerouting", "prerouting", "dstnat", dnat),
        _chain("output", "output", "-100", dnat),
        _chain("postrouting", "postrouting", "srcnat", post),
    ]
    return f"table ip {TABLE} {{\n" + "\n".join(chains) + "}\n"


def transaction(text: str, family: str = "ip") -> str:
    """The ``nft -f`` input that replaces the table atomically (works whether it exists or not)."""
    return f"table {family} {TABLE} {{}}\ndelete table {family} {TABLE}\n{text}"


def canonical(listed: str) -> str:
    """``nft list table`` output with the counter values dropped: comparable with :func:`render`."""
    return _COUNTER_RE.sub("counter", listed)


def floating_ips(listed: str) -> dict[str, str]:
    """Floating IP -> fixed IP as the live table (``nft list table`` text) translates them."""
    return dict(_DNAT_RE.findall(canonical(listed).split("\tchain output", 1)[0]))


# -- IPv6: routed, never translated -------------------------------------------------------------------------
# A router that routes IPv6 also gets ``table ip6 netdash``, a filter (no NAT: tenant prefixes are unique once
# routed). The policy, like a home router's (RFC 6092):
#
# * forward: replies (``ct state established,related``, which includes ICMPv6 errors such as Packet Too Big)
#   pass; anything that does not enter through ``qg`` passes (east-west between attached subnets, and outbound);
#   from the external side only ICMPv6 echo requests start a flow (so the outside can ping a tenant address);
#   every other new inbound connection is dropped — there are no IPv6 floating IPs to open a way in;
# * input: DHCPv6 to the router is dropped: the router's dnsmasq only advertises (it must serve a DHCPv6 range
#   to set the O flag), the network's dnsmasq is the one DHCPv6 server.


@dataclass(frozen=True)
class FilterTable6:
    """What one IPv6-routing router lets through."""

    gateway_dev: str


def _filter_chain(name: str, policy: str, rules: list[str]) -> str:
    head = f"\tchain {name} {{\n\t\ttype filter hook {name} priority filter; policy {policy};\n"
    return head + "".join(f"\t\t{r}\n" for r in rules) + "\t}\n"


def render6(t: FilterTable6) -> str:
    """The ip6 table as ``nft list table`` prints it (without counter values)."""
    g = t.gateway_dev
    chains = [
        _filter_chain("input", "accept", ["udp dport 547 counter drop"]),
        _filter_chain("forward", "drop", [
            "ct state established,related counter accept",
            f'iifname != "{g}" counter accept',
            f'iifname "{g}" icmpv6 type echo-request counter accept',
        ]),
    ]
    return f"table ip6 {TABLE} {{\n" + "\n".join(chains) + "}\n"
