"""The network's L2 segment: a namespace holding a Linux bridge that every port of the network plugs into.

Removing the namespace is the whole teardown: the kernel frees the bridge and the bridge-side veth ends with
it (deleting a bridge explicitly costs ~60 ms, MEASURED.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import netns
from ..interface import HostScan, NetworkFound
from ..naming import Names
from ..ops import LinkAddBridge, NetnsAdd, Op

NS_KIND = "seg"


def plan(n: Names, net_id: str) -> list[Op]:
    """The segment namespace and its bridge."""
    seg = n.seg_ns(net_id)
    return [NetnsAdd(seg), LinkAddBridge(seg, n.bridge(net_id))]


def remove(n: Names, net_ids: Iterable[str]) -> None:
    """Delete the segment namespaces (ports and bridge go with them)."""
    for nid in net_ids:
        netns.remove(n.seg_ns(nid))


def scan(scan: HostScan, namespaces: set[str]) -> None:
    """Record the segments found (kernel ids of the ``seg`` namespaces)."""
    for nid in namespaces:
        scan.networks.setdefault(nid, NetworkFound()).seg_ns = True
