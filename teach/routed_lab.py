"""What to notice in the routed lab, from what the kernel showed (pure: works on the agent's observations).

Both instances hold the same address, so nothing inside tells their flows apart; the upstream's answer (the source
address it saw) and each router's conntrack entries (the reply tuple each expects) are what show the two
translations. Every fact is keyed so the page can check its steps off; none is written unless observed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Observation:
    """One side of the routed lab as the agent read it just now."""

    slug: str
    inside_ip: str
    router: str
    external_ip: str
    seen_as: str  # what the upstream echoed back: our source address as it saw it ("" if unreachable)
    flows: list[dict[str, str]] = field(default_factory=list)  # this router's conntrack flows to the upstream


def facts(sides: list[Observation], upstream: str, port: int) -> dict[str, str]:
    """Plain-language findings keyed ``reached:<slug>``, ``unreached:<slug>``, ``different_sources``,
    ``same_inside``, ``own_flows:<slug>``."""
    out: dict[str, str] = {}
    for side in sides:
        if side.seen_as:
            out[f"reached:{side.slug}"] = (f"{side.slug}'s instance ({side.inside_ip}) reached the upstream "
                                           f"{upstream}:{port}, which saw it as {side.seen_as}.")
        else:
            out[f"unreached:{side.slug}"] = f"{side.slug}'s instance could not reach the upstream {upstream}:{port}."
    seen = [s.seen_as for s in sides]
    if len(sides) == 2 and all(seen) and seen[0] != seen[1]:
        inside = sides[0].inside_ip if sides[0].inside_ip == sides[1].inside_ip else "the same network"
        out["different_sources"] = (f"The upstream saw two different source addresses, {seen[0]} and {seen[1]}, "
                                    f"although both instances are {inside}: each router translated (SNAT) its own "
                                    "tenant's traffic to its own external address.")
    if len(sides) == 2 and sides[0].inside_ip and sides[0].inside_ip == sides[1].inside_ip:
        out["same_inside"] = (f"Inside, both instances are {sides[0].inside_ip}; the routers are where the two "
                              "become distinguishable.")
    for side in sides:
        others = {o.external_ip for o in sides if o is not side}
        replies = {f.get("reply_dst") for f in side.flows}
        if side.flows and replies == {side.external_ip} and not replies & others:
            other_slugs = ", ".join(o.slug for o in sides if o is not side)
            out[f"own_flows:{side.slug}"] = (
                f"Router {side.router}'s conntrack holds {len(side.flows)} flow(s) from {side.inside_ip} to the "
                f"upstream, every reply addressed to its own {side.external_ip}: none of {other_slugs}'s.")
    return out
