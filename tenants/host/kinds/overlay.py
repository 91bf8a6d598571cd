"""The overlay: a network spanning nodes over kernel VXLAN (issue 13), on one machine or several.

* the fabric — namespace ``fabric-F`` with a bridge, shared by every node and owned by none: created
  idempotently by whoever needs it, never reaped as an orphan;
* a node's underlay — namespace ``ul-N`` with a veth into the fabric bridge holding the node's VTEP address, MTU
  1550 on both ends so tenant frames keep 1500 bytes;
* a network's tunnel on a node — VXLAN ``xNET`` created from the node's underlay (``local <vtep> dstport 4789
  nolearning``: its UDP socket stays in the underlay) straight into the network's segment namespace, enslaved to
  its bridge, with one flood entry per other node of the network (head-end replication from the database).

A deployment's real-host underlay (``host_device`` in the specs, ``NETDASH_UNDERLAY=host``): no fabric and no
underlay namespace; each VXLAN device is made on the host's own interface and moved into the segment namespace,
its UDP socket on the host. Tests and the demo never select it (``netdash/settings.py`` refuses it there).

Safety: with the simulated underlay (the default) nothing here touches the root namespace. Every namespace is one
of ours; deleting an underlay deletes the VXLAN devices created from it (measured), which :func:`plan_tunnel`
recreates on the next ensure.
"""

from __future__ import annotations

from .. import netns
from ..naming import Names
from ..ops import AddrAdd, FloodList, LinkAddBridge, LinkMtu, LinkUp, NetnsAdd, Op, VethAdd, VxlanAdd
from ..specs import TunnelSpec, UnderlaySpec

UNDERLAY_MTU = 1550  # 1500 + VXLAN's 50 bytes of headers
FABRIC_ID = "0"  # one fabric per prefix


def fabric_names(n: Names) -> tuple[str, str]:
    """(namespace, bridge) of the fabric under ``n``'s prefix."""
    return n.fabric_ns(FABRIC_ID), n.bridge(FABRIC_ID)


def plan_fabric(n: Names) -> list[Op]:
    """The fabric namespace and its bridge."""
    ns, bridge = fabric_names(n)
    return [NetnsAdd(ns), LinkAddBridge(ns, bridge)]


def plan_underlay(n: Names, spec: UnderlaySpec) -> list[Op]:
    """The node's underlay namespace, its veth into the fabric and its VTEP address; nothing for a real-host
    underlay (the operator's interface already holds the VTEP: netdash adds nothing to the host namespace)."""
    if spec.host_device is not None:
        return []
    ul, dev, port = n.underlay_ns(spec.node_id), n.underlay_dev(spec.node_id), n.fabric_port(spec.node_id)
    return [
        NetnsAdd(ul),
        VethAdd(spec.fabric_ns, port, ul, dev, master=spec.fabric_bridge),
        LinkMtu(spec.fabric_ns, port, UNDERLAY_MTU),
        LinkMtu(ul, dev, UNDERLAY_MTU),
        AddrAdd(ul, dev, str(spec.vtep), spec.prefixlen),
        LinkUp(ul, dev),
    ]


def plan_tunnel(n: Names, spec: TunnelSpec) -> list[Op]:
    """The network's VXLAN port on this node and its flood list (the segment must exist)."""
    nid = spec.network_kernel_id
    dev = n.vxlan(nid)
    if spec.host_device is not None:  # a deployment's real-host underlay: made on the host's interface
        source: tuple[str | None, str] = (None, spec.host_device)
    else:
        source = (n.underlay_ns(spec.node_id), n.underlay_dev(spec.node_id))
    return [
        VxlanAdd(*source, n.seg_ns(nid), dev, spec.vni, str(spec.local_vtep), n.bridge(nid)),
        FloodList(n.seg_ns(nid), dev, tuple(str(p) for p in spec.peers)),
    ]


def remove_underlay(n: Names, node_id: str) -> None:
    """Delete the node's underlay (the kernel deletes the VXLAN devices made from it, and its fabric port)."""
    netns.remove(n.underlay_ns(node_id))


def remove_fabric(n: Names) -> None:
    """Delete the fabric (only when every node of this prefix is gone: its ports go with it)."""
    netns.remove(fabric_names(n)[0])
