"""The inspector's IPv6 block for an instance (agent side, like ``hostside``): the RA it hears and what its flags do.

The flags come off the wire (``tenants.host.ra_probe``: the kernel keeps no copy of M/O), so the page shows what
the instance really receives, not what the database intends; the sentences say what each flag decides.
"""

from __future__ import annotations

from typing import Any

from tenants.host import HostError
from tenants.hostspecs import driver, instance_spec
from tenants.models import Instance


def flag_meanings(ra: Any) -> list[str]:
    """One sentence per flag of ``ra`` (a ``RouterAdvert``): what the instance does because of it."""
    lines = [
        "M=1: addresses come from DHCPv6 — the instance's dhcpcd asks dnsmasq for the one reserved for its MAC"
        if ra.managed else "M=0: no DHCPv6 addresses",
        "O=1: other settings (DNS) come from DHCPv6 — dhcpcd sends an information request"
        if ra.other else "O=0: no DHCPv6 at all, the RA says everything",
    ]
    for p in ra.prefixes:
        lines.append(f"{p.prefix}: A=1 — the instance builds its own address from its MAC (SLAAC, EUI-64)"
                     if p.autonomous else f"{p.prefix}: A=0 — no SLAAC address from this prefix")
    lines.append("router lifetime 0: not a default router (an isolated network: no route out)"
                 if ra.router_lifetime == 0 else f"router lifetime {ra.router_lifetime} s: the default route")
    return lines


def instance_ipv6(instance: Instance) -> dict[str, Any] | None:
    """RA flags the instance receives now, with their meaning, and its DHCPv6 client; None without IPv6."""
    subnet = instance.ipv6_subnet or (instance.subnet if instance.subnet.ip_version == 6 else None)
    if subnet is None:
        return None
    d = driver()
    try:
        ra = d.instance_router_advert(instance.kernel_id)
    except (HostError, OSError) as exc:
        return {"mode": subnet.ipv6_address_mode, "ra": None, "error": str(exc), "meanings": []}
    out: dict[str, Any] = {"mode": subnet.ipv6_address_mode, "error": None, "ra": None, "meanings": []}
    if ra is not None:
        out["ra"] = {"source": ra.source, "M": int(ra.managed), "O": int(ra.other),
                     "router_lifetime": ra.router_lifetime,
                     "prefixes": [{"prefix": p.prefix, "L": int(p.on_link), "A": int(p.autonomous)}
                                  for p in ra.prefixes]}
        out["meanings"] = flag_meanings(ra)
    out["client"] = ({"program": "dhcpcd", "pid": d.dhcpcd_pid(instance.kernel_id)}
                     if instance_spec(instance).dhcpv6 else None)
    return out
