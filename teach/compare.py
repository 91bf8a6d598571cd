"""Compare mode: mark what differs between two namespaces' kernel state (pure, works on the inspect dicts).

Rows are matched by *meaning*, not by device name: two instances' NICs have different names (derived from
different kernel ids) but the same role, so "instance NIC" is compared with "instance NIC" and the interesting
differences stand out — same address, different MAC, a different MAC answering for the same DHCP server address.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]

SAME, DIFFERS, ONLY = "same", "differs", "only"

def _addr_key(r: Row) -> str:
    # An IPv6 link-local address is derived from the MAC: compare it as "the link-local address", so two
    # different MACs show as a difference rather than as two unrelated rows.
    if str(r["address"]).lower().startswith("fe80:"):
        return f"link-local/{r['prefixlen']}"
    return f"{r['address']}/{r['prefixlen']}"


def _neigh_key(r: Row) -> str:
    # Likewise the solicited-node multicast group of our own link-local address (ff02::1:ffXX:XXXX).
    return "solicited-node multicast" if str(r["ip"]).lower().startswith("ff02::1:ff") else r["ip"]


# section → (key of a row, the value compared for rows with equal keys)
SECTIONS: dict[str, tuple[Callable[[Row], Any], Callable[[Row], Any]]] = {
    "links": (lambda r: r.get("role") or r["name"], lambda r: (r.get("mac"), r.get("state"), r.get("kind"))),
    "addresses": (_addr_key, lambda r: (r["address"], r.get("dev_role"))),
    "routes": (lambda r: r["dst"], lambda r: (r.get("gateway"), r.get("dev_role"))),
    "neighbours": (_neigh_key, lambda r: (r["ip"], r.get("mac"))),
    "udp": (lambda r: (r["local"], r["port"]), lambda r: r.get("service")),
    "lease": (lambda r: r["field"], lambda r: r["value"]),
}


def _mark(rows: list[Row], other: list[Row], key: Callable[[Row], Any], value: Callable[[Row], Any]) -> None:
    theirs: dict[Any, list[Any]] = {}
    for r in other:
        theirs.setdefault(key(r), []).append(value(r))
    for r in rows:
        k = key(r)
        if k not in theirs:
            r["cmp"] = ONLY
        else:
            r["cmp"] = SAME if value(r) in theirs[k] else DIFFERS


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of two inspect results whose rows carry ``cmp``: ``same``, ``differs`` or ``only`` (one side)."""
    a, b = copy.deepcopy(a), copy.deepcopy(b)
    for section, (key, value) in SECTIONS.items():
        ra, rb = a.get(section) or [], b.get(section) or []
        _mark(ra, rb, key, value)
        _mark(rb, ra, key, value)
    a["same_namespace"] = b["same_namespace"] = a.get("inode") is not None and a.get("inode") == b.get("inode")
    return a, b


def summary(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Plain-language findings for the top of the compare page (what a learner should notice)."""
    return list(facts(a, b).values())


def facts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, str]:
    """The findings keyed by what they establish (the lab checks its steps off by these keys; one
    ``neighbour_differs:<ip>`` per address answered by a different MAC on each side)."""
    out = {}
    addr_a = {f"{r['address']}/{r['prefixlen']}" for r in a.get("addresses", []) if r.get("dev_role") != "loopback"}
    addr_b = {f"{r['address']}/{r['prefixlen']}" for r in b.get("addresses", []) if r.get("dev_role") != "loopback"}
    shared = sorted(addr_a & addr_b)
    if shared:
        out["same_address"] = (f"Both namespaces hold {', '.join(shared)}: the same address, in two separate "
                               "kernels' views.")
    macs_a = {r.get("mac") for r in a.get("links", []) if r.get("role") not in (None, "loopback")}
    macs_b = {r.get("mac") for r in b.get("links", []) if r.get("role") not in (None, "loopback")}
    if macs_a and macs_b and not macs_a & macs_b:
        out["different_macs"] = "Their interfaces have different MAC addresses."
    neigh_a = {r["ip"]: r.get("mac") for r in a.get("neighbours", [])}
    neigh_b = {r["ip"]: r.get("mac") for r in b.get("neighbours", [])}
    for ip in sorted(set(neigh_a) & set(neigh_b)):
        if neigh_a[ip] and neigh_b[ip] and neigh_a[ip] != neigh_b[ip]:
            out[f"neighbour_differs:{ip}"] = (f"{ip} is answered by {neigh_a[ip]} on the left and {neigh_b[ip]} on the "
                                        "right: two different machines share that address.")
    if a.get("inode") and b.get("inode") and a["inode"] != b["inode"]:
        out["separate_namespaces"] = ("They are different network namespaces (different inodes): neither routing "
                                      "table can reach the other's segment, because no link or route connects them.")
    return out
