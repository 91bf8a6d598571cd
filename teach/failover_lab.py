"""What to notice in the failover lab, from what each node's kernel showed (pure: works on the agents' observations).

One network spans the nodes over VXLAN: each node holds its own segment (namespace, bridge, VXLAN port with the
network's VNI and a flood entry per other node's VTEP), two of them run a dnsmasq each (HA DHCP, seeded, not
authoritative), the instance's node runs its udhcpc. The database only says what was asked for (``Topology``:
which node, which server address, which VNI); every finding is written from what an agent read on its own node
(``NodeObservation``), and a finding the kernel contradicts is written as not holding (``no_…`` key), so the page
cannot check a step off on a claim the nodes do not bear out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

# A learner's lab network; the CIDR repeats across learners (each lab network is its own segment and VNI).
CIDR = "10.0.0.0/24"
NETWORK = "failover-lab"
SIDE = "ha"  # the lab's one tenant
# Events of udhcpc's script after which the instance no longer held its address.
LOST = ("deconfig", "nak", "leasefail")
HELD = ("bound", "renew")


@dataclass
class Server:
    """One of the network's DHCP servers as the database placed it."""

    rank: int
    node: str
    address: str


@dataclass
class Topology:
    """What the lab asked for: the network's VNI, every node it is on (with its VTEP), its servers, the instance."""

    vni: int
    vteps: dict[str, str]  # node → VTEP address, every node the network is present on
    servers: list[Server]
    hostname: str
    mac: str
    ip: str  # the address IPAM reserved for the instance
    instance_node: str


@dataclass
class NodeObservation:
    """One node as its agent read it just now."""

    node: str
    segment: bool  # the network's segment namespace exists here
    tunnel: dict[str, Any] | None = None  # {"dev", "vni", "flood": [VTEP…], "learned": [MAC…]}; None: no VXLAN
    dnsmasq_pid: int | None = None  # the network's dnsmasq here (None: none runs)
    client: dict[str, Any] | None = None  # the instance's node only: see ``client_observation`` in teach.jobs


def _server_by_address(topology: Topology, address: str) -> Server | None:
    return next((s for s in topology.servers if address and s.address == address), None)


def _norm(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


def _segment_facts(topology: Topology, obs: NodeObservation, out: dict[str, str]) -> None:
    others = {node: vtep for node, vtep in topology.vteps.items() if node != obs.node and vtep}
    tunnel = obs.tunnel
    if not obs.segment or tunnel is None:
        what = "segment namespace" if not obs.segment else "VXLAN port"
        out[f"no_segment:{obs.node}"] = f"{obs.node} holds no {what} of this network."
        return
    flood = set(tunnel.get("flood") or ())
    missing = sorted(set(others.values()) - flood)
    if tunnel.get("vni") != topology.vni or missing:
        why = (f"its VXLAN {tunnel.get('dev')} has VNI {tunnel.get('vni')}, not {topology.vni}"
               if tunnel.get("vni") != topology.vni else f"its flood list lacks {', '.join(missing)}")
        out[f"no_segment:{obs.node}"] = f"{obs.node} holds the segment, but {why}."
        return
    peers = ", ".join(f"{vtep} ({node})" for node, vtep in sorted(others.items())) or "no other node"
    out[f"segment:{obs.node}"] = (f"{obs.node} holds the segment namespace and VXLAN {tunnel['dev']} with VNI "
                                  f"{topology.vni}, flooding broadcasts to {peers}.")


def _learned_fact(topology: Topology, obs: NodeObservation, out: dict[str, str]) -> None:
    """The instance's MAC in another node's bridge, behind the VXLAN port: that bridge heard the instance's frames
    through the tunnel (the same L2 segment on two kernels)."""
    if obs.node == topology.instance_node or not obs.tunnel:
        return
    if topology.mac.lower() in {m.lower() for m in obs.tunnel.get("learned") or ()}:
        out[f"learned:{obs.node}"] = (f"{obs.node}'s bridge learned {topology.hostname}'s MAC {topology.mac} behind "
                                      f"VXLAN {obs.tunnel['dev']}: the instance runs on {topology.instance_node}, "
                                      "one L2 segment spans both kernels.")


def _dnsmasq_facts(topology: Topology, by_node: dict[str, NodeObservation], out: dict[str, str]) -> None:
    for server in topology.servers:
        obs = by_node.get(server.node)
        if obs is None:
            continue
        if obs.dnsmasq_pid is not None:
            out[f"dnsmasq:{server.node}"] = (f"dnsmasq for server {server.address} runs on {server.node} "
                                             f"(pid {obs.dnsmasq_pid}).")
        else:
            out[f"dnsmasq_dead:{server.node}"] = f"No dnsmasq runs for server {server.address} on {server.node}."


def _held_since_first_lease(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the bound/renew events, the losses after the first of them) of the client log."""
    held, lost, first = [], [], False
    for e in events:
        if e.get("event") in HELD:
            held.append(e)
            first = True
        elif first and e.get("event") in LOST:
            lost.append(e)
    return held, lost


def _client_facts(topology: Topology, by_node: dict[str, NodeObservation], out: dict[str, str]) -> None:
    obs = by_node.get(topology.instance_node)
    client = obs.client if obs is not None else None
    if client is None:
        return
    lease = client.get("lease")
    nic = {_norm(a) for a in client.get("addresses") or ()}
    name = topology.hostname
    if lease is None:
        out["no_leased"] = f"{name} holds no lease now (its client recorded none)."
        return
    ip, server_id = _norm(lease.get("ip", "")), _norm(lease.get("server_id", ""))
    server = _server_by_address(topology, server_id)
    if ip not in nic:
        why = f"it is for {ip}, yet the NIC holds {', '.join(sorted(nic)) or 'no IPv4 address'}"
    elif server is None:
        why = f"its server id {server_id or '(none)'} is none of the network's servers"
    elif ip != _norm(topology.ip):
        why = f"it is for {ip}, not the reserved {topology.ip}"
    else:
        why = ""
    if why:
        out["no_leased"] = f"{name}'s client lease does not hold up: {why}."
        return
    across = (f", across the VXLAN from {topology.instance_node}" if server.node != topology.instance_node
              else f", on {name}'s own node")
    out["leased"] = (f"{name} holds {ip} (on its NIC), ACKed by {server.address} — the server on {server.node}"
                     f"{across} (the lease file's server id).")
    held, lost = _held_since_first_lease(client.get("events") or [])
    for e in lost:
        out["deconfigured"] = (f"The client log shows a {e['event']} after the first lease: {name}'s address was "
                               "removed for a while.")
    if not held or lost:
        return
    current = held[-1]
    earlier = next((e for e in reversed(held) if _norm(e.get("server_id", "")) != _norm(current.get("server_id", ""))),
                   None)
    if earlier is None or _norm(current.get("server_id", "")) != server_id or _norm(current.get("ip", "")) != ip:
        return
    before = _server_by_address(topology, _norm(earlier.get("server_id", "")))
    if before is None or _norm(earlier.get("ip", "")) != ip:
        return
    dead = by_node.get(before.node)
    if dead is None or dead.dnsmasq_pid is not None:
        return  # the first server is back (or unobserved): a switch, but not a failover seen now
    out["renewed"] = (f"Renewed from {server.address} on {server.node}, same address {ip}: {before.address} on "
                      f"{before.node} is down (no dnsmasq), and the client log shows no deconfig since the first "
                      "lease — the address never left the NIC.")


def facts(topology: Topology, nodes: list[NodeObservation]) -> dict[str, str]:
    """Plain-language findings keyed ``segment:<node>`` / ``no_segment:<node>``, ``learned:<node>``,
    ``dnsmasq:<node>`` / ``dnsmasq_dead:<node>``, ``leased`` / ``no_leased``, ``renewed``, ``deconfigured``."""
    out: dict[str, str] = {}
    by_node = {o.node: o for o in nodes}
    for obs in nodes:
        _segment_facts(topology, obs, out)
        _learned_fact(topology, obs, out)
    _dnsmasq_facts(topology, by_node, out)
    _client_facts(topology, by_node, out)
    return out


def observation(data: dict[str, Any]) -> NodeObservation:
    """An agent's answer (a dict over RQ) back as an observation."""
    return NodeObservation(**{k: data.get(k) for k in ("node", "segment", "tunnel", "dnsmasq_pid", "client")})

