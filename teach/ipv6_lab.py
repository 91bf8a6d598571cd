"""What to notice in the three-modes IPv6 lab, from what the kernel showed (pure: works on the agent's observations).

Each mode's network sends its own Router Advertisement; the flags an instance *received* (M, O, and A per prefix)
decide what it does, so every finding starts from the probed flags, never from the mode the database asked for:
A=1 → the kernel built an EUI-64 address from the MAC; M=1 → dhcpcd took the address the database reserved;
M=1 or O=1 → a DHCPv6 client runs. A finding that the kernel contradicts is written as not holding (``no_…`` key),
so the page cannot check a step off on a claim the instance does not bear out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from tenants.validators import eui64_address

# One isolated network per mode; the prefixes repeat across learners (nothing routes between lab networks).
MODES = (
    ("slaac", "v6-slaac", "2001:db8:a1::/64"),
    ("dhcpv6-stateless", "v6-stateless", "2001:db8:a2::/64"),
    ("dhcpv6-stateful", "v6-stateful", "2001:db8:a3::/64"),
)
LINK_LOCAL = ipaddress.ip_network("fe80::/64")


@dataclass
class Observation:
    """One mode's instance as the agent read it just now."""

    mode: str
    hostname: str
    mac: str
    db_address: str  # what IPAM recorded for the instance (EUI-64 prediction or the reserved DHCPv6 address)
    ra: dict[str, Any] | None  # {"M": 0/1, "O": 0/1, "prefixes": [{"prefix", "L", "A"}]}; None: no RA heard
    addresses: list[dict[str, Any]] = field(default_factory=list)  # {"address", "prefixlen", "origin"} IPv6 only
    client: dict[str, Any] | None = None  # {"program": "dhcpcd", "pid": int | None}; None: no client configured
    leases: list[str] = field(default_factory=list)  # active lease rows (dnsmasq's reports) for the instance


def _flags(ra: dict[str, Any]) -> str:
    prefixes = " ".join(f"{p['prefix']} A={p['A']}" for p in ra["prefixes"])
    return f"M={ra['M']} O={ra['O']}" + (f", {prefixes}" if prefixes else "")


def _norm(address: str) -> str:
    """One spelling per address (the kernel, dnsmasq and the database may compress differently)."""
    return str(ipaddress.ip_address(address)) if address else ""


def _held(obs: Observation, origin: str) -> list[str]:
    return [_norm(a["address"]) for a in obs.addresses if a["origin"] == origin]


def facts(observations: list[Observation]) -> dict[str, str]:
    """Plain-language findings keyed ``ra:<mode>`` / ``no_ra:<mode>``, ``eui64:<mode>`` / ``no_eui64:<mode>``,
    ``dhcpv6:<mode>`` / ``no_dhcpv6:<mode>``, ``client:<mode>`` / ``no_client:<mode>``, ``link_local:<mode>``."""
    out: dict[str, str] = {}
    for obs in observations:
        m = obs.mode
        link_local = str(eui64_address(LINK_LOCAL, obs.mac))
        if link_local in _held(obs, "link-local"):
            out[f"link_local:{m}"] = (f"{obs.hostname} holds {link_local}, the link-local address the kernel "
                                      f"builds from MAC {obs.mac} on its own, RA or not.")
        ra = obs.ra
        if ra is None:
            out[f"no_ra:{m}"] = f"{obs.hostname} heard no Router Advertisement, so it has no global address to build."
            continue
        out[f"ra:{m}"] = f"{obs.hostname} received an RA with {_flags(ra)}."
        slaac = _held(obs, "SLAAC")
        for p in ra["prefixes"]:
            if not p["A"]:
                continue
            want = str(eui64_address(ipaddress.ip_network(p["prefix"]), obs.mac))
            if want in slaac:
                out[f"eui64:{m}"] = (f"M={ra['M']},A=1 → {obs.hostname} computed {want} itself: {p['prefix']} plus "
                                     f"the EUI-64 of its MAC {obs.mac} (SLAAC, no server chose it).")
            else:
                holds = ", ".join(slaac) or "no SLAAC address"
                out[f"no_eui64:{m}"] = (f"A=1 for {p['prefix']}, yet {obs.hostname} does not hold {want}, the "
                                        f"EUI-64 address of {obs.mac} (it holds {holds}).")
        dhcp = _held(obs, "DHCPv6")
        if ra["M"]:
            reserved = _norm(obs.db_address)
            if reserved in dhcp and reserved in {_norm(ip) for ip in obs.leases}:
                out[f"dhcpv6:{m}"] = (f"M=1 → DHCPv6 address {obs.db_address} (a /128) from the database: dnsmasq "
                                      f"handed out the address reserved for MAC {obs.mac}, and its lease row is here.")
            else:
                out[f"no_dhcpv6:{m}"] = (f"M=1, yet {obs.hostname} holds {', '.join(dhcp) or 'no DHCPv6 address'} "
                                         f"and the leases show {', '.join(obs.leases) or 'nothing'}, not the reserved "
                                         f"{obs.db_address}.")
        elif dhcp:
            out[f"no_dhcpv6:{m}"] = f"M=0, yet {obs.hostname} holds DHCPv6 address(es) {', '.join(dhcp)}."
        wants_client = bool(ra["M"] or ra["O"])
        running = obs.client is not None and obs.client.get("pid") is not None
        if wants_client and running:
            what = "its address and options" if ra["M"] else "options only (DNS), no address: no lease row"
            out[f"client:{m}"] = (f"M={ra['M']},O={ra['O']} → {obs.client['program']} (pid {obs.client['pid']}) "
                                  f"runs in {obs.hostname} and asks DHCPv6 for {what}.")
        elif not wants_client and not running:
            out[f"client:{m}"] = (f"M=0,O=0 → no DHCPv6 client runs in {obs.hostname}: the RA alone configured it, "
                                  "and no lease row exists.")
        else:
            out[f"no_client:{m}"] = (f"M={ra['M']},O={ra['O']}, yet a DHCPv6 client "
                                     f"{'runs' if running else 'is not running'} in {obs.hostname}.")
    return out
