"""The network's L2 segment: a namespace holding a Linux bridge that every port of the network plugs into.

Removing the namespace is the whole teardown: the kernel frees the bridge and the bridge-side veth ends with
it (deleting a bridge explicitly costs ~60 ms, MEASURED.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import netns
from ..interface import HostScan, NetworkFound
from ..naming import Names
from ..ops import LinkAddBridge, NetnsAdd, Op, Sysctl

NS_KIND = "seg"


def plan(n: Names, net_id: str, *, ipv6: bool = False) -> list[Op]:
    """The segment namespace and its bridge; on an IPv6 network, IPv6 off in it *before* the bridge and ports
    exist (else they take link-local addresses and send router solicitations and DAD of their own onto the
    tenant's link; ``all`` also covers ports made before the network had an IPv6 subnet)."""
    seg = n.seg_ns(net_id)
    ops: list[Op] = [NetnsAdd(seg)]
    if ipv6:
        ops += [Sysctl(seg, f"net.ipv6.conf.{which}.disable_ipv6", "1") for which in ("default", "all")]
    return [*ops, LinkAddBridge(seg, n.bridge(net_id))]


def remove(n: Names, net_ids: Iterable[str]) -> None:
    """Delete the segment namespaces (ports and bridge go with them)."""
    for nid in net_ids:
        netns.remove(n.seg_ns(nid))


def scan(scan: HostScan, namespaces: set[str]) -> None:
    """Record the segments found (kernel ids of the ``seg`` namespaces)."""
    for nid in namespaces:
        scan.networks.setdefault(nid, NetworkFound()).seg_ns = True
