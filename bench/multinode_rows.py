"""Bench rows for several nodes (issue 13): create → lease with the instance on the DHCP server's node, against
the instance on another node, leasing across the VXLAN overlay; and HA DHCP failover: the server that leased an
instance is SIGKILLed and the time until the client holds an ACK from the other server on the same address.

Driver level, like the IPv6 rows: two simulated nodes are two drivers with prefixes of their own (the floor's and
the shell's, so the supervisor's cleanup covers their networks and instances), an underlay each on one fabric
under the floor's prefix; the overlay (fabric, underlays) is removed here when the rows end, even on failure.
Each sample is one fresh network (made first with its tunnels, not timed) and the creation of one instance on
it, timed until its client holds the lease. Opt-in: ``--figures …,multinode``.

Failover, client side: busybox udhcpc would renew only at T1 (half the lease), so the sample asks it to renew
(one SIGUSR1) at the kill, as a client reaching its renewal time with its server gone; the figure is its own
fallback from there (unicast REQUEST to the dead server unanswered, then the broadcast one that the seeded,
non-authoritative survivor ACKs). One nudge only: a second SIGUSR1 while a renew is pending makes udhcpc start
over with a ``deconfig`` (busybox's "impatient are we? fine, square 1"; seen when nudged every 50 ms). A
``deconfig`` (lease file gone) fails the sample.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from tenants.host import HostDriver, InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec, TunnelSpec, UnderlaySpec
from tenants.host.dhcp_client import read_lease

from .stats import summary

SAMPLES = 10
LEASE_TIMEOUT = 30.0
VTEP = {"1": "10.250.0.1", "2": "10.250.0.2"}  # inside the project's fabric namespace only (no root namespace)
SUBNET = SubnetSpec(cidr="10.78.0.0/24", gateway="10.78.0.1", dhcp_address="10.78.0.2", lease_seconds=3600)
HA_SERVERS = ("10.78.0.2", "10.78.0.3")  # node 1's and node 2's own address on the subnet
FAILOVER_SAMPLES = 5
FAILOVER_TIMEOUT = 30.0
POLL = 0.005


def _sample(server: HostDriver, client: HostDriver, j: int) -> float:
    """One instance created on ``client`` for a network served by ``server``; seconds until it holds its lease."""
    nid, iid, mac = f"b7{j:04x}", f"c7{j:04x}", f"02:00:00:b7:{j >> 8 & 255:02x}:{j & 255:02x}"
    server.ensure_network(NetworkSpec(nid, (SUBNET,), (ReservationSpec(mac, f"h{j}", f"10.78.0.{10 + j % 200}"),)))
    if client is not server:
        client.ensure_network(NetworkSpec(nid, (), ()))
        for d, node, peer in ((server, "1", "2"), (client, "2", "1")):
            d.ensure_tunnel(TunnelSpec(nid, 1000 + j, node, VTEP[node], (VTEP[peer],)))
    t0 = time.perf_counter()
    client.ensure_instance(InstanceSpec(iid, nid, mac, f"h{j}"), wait=False)
    lease = client.wait_instance_lease(iid, timeout=LEASE_TIMEOUT)
    elapsed = time.perf_counter() - t0
    if lease is None:
        raise RuntimeError(f"instance {iid} got no lease in {LEASE_TIMEOUT:.0f}s")
    client.remove_instance(iid, release=False)
    for d in {id(server): server, id(client): client}.values():
        d.remove_network(nid)
    return elapsed


def _ha_spec(nid: str, mine: str, mac: str, ip: str) -> NetworkSpec:
    """One HA server's view of the network: its own address, the other announced too (as hostspecs builds it)."""
    subnet = SubnetSpec(cidr="10.78.0.0/24", gateway="10.78.0.1", dhcp_address=mine, lease_seconds=3600,
                        peer_dhcp_addresses=tuple(a for a in HA_SERVERS if a != mine))
    return NetworkSpec(nid, (subnet,), (ReservationSpec(mac, "hv", ip),), ha=True)


def _failover_sample(servers: tuple[HostDriver, HostDriver], j: int) -> float:
    """A network served by both nodes, its instance on node 2; the server that leased it is killed: seconds from
    the kill until the client holds the survivor's ACK on the same address."""
    nid, iid, mac, ip = f"b8{j:04x}", f"c8{j:04x}", f"02:00:00:b8:{j >> 8 & 255:02x}:{j & 255:02x}", "10.78.0.20"
    for k, (d, address) in enumerate(zip(servers, HA_SERVERS, strict=True)):
        d.ensure_network(_ha_spec(nid, address, mac, ip))
        node, peer = str(k + 1), str(2 - k)
        d.ensure_tunnel(TunnelSpec(nid, 2000 + j, node, VTEP[node], (VTEP[peer],)))
    client = servers[1]
    try:
        client.ensure_instance(InstanceSpec(iid, nid, mac, "hv"), wait=False)
        held = client.wait_instance_lease(iid, timeout=LEASE_TIMEOUT)
        if held is None:
            raise RuntimeError(f"instance {iid} got no lease in {LEASE_TIMEOUT:.0f}s")
        first = HA_SERVERS.index(str(held.server_id))
        survivor = HA_SERVERS[1 - first]
        pid = client.udhcpc_pid(iid)
        if pid is None:
            raise RuntimeError(f"instance {iid} has no running udhcpc")
        os.kill(servers[first].dnsmasq_pid(nid) or 0, signal.SIGKILL)
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGUSR1)
        deadline = t0 + FAILOVER_TIMEOUT
        while True:
            now = read_lease(client.names.inst_lease(iid))
            if now is None:
                raise RuntimeError(f"instance {iid} deconfigured during the failover")
            if str(now.server_id) == survivor and str(now.ip) == ip:
                return time.perf_counter() - t0
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no ACK from the surviving server {survivor} in {FAILOVER_TIMEOUT:.0f}s")
            time.sleep(POLL)
    finally:
        client.remove_instance(iid, release=False)
        for d in servers:
            d.remove_network(nid)


def measure(drivers: dict[str, HostDriver], n: int = SAMPLES) -> dict[str, Any]:
    """``{"same_node": summary, "cross_node": summary}`` of create → lease over ``n`` samples each."""
    server, client = drivers["floor"], drivers["shell"]
    fabric_ns, fabric_bridge = server.fabric()
    try:
        server.ensure_fabric()
        for d, node in ((server, "1"), (client, "2")):
            d.ensure_underlay(UnderlaySpec(node, VTEP[node], 24, fabric_ns, fabric_bridge))
        return {"same_node": summary([_sample(server, server, j) for j in range(1, n + 1)]),
                "cross_node": summary([_sample(server, client, j) for j in range(n + 1, 2 * n + 1)]),
                "dhcp_failover": summary([_failover_sample((server, client), j)
                                          for j in range(1, FAILOVER_SAMPLES + 1)])}
    finally:
        for d in (client, server):  # the server's prefix holds the fabric: it goes last
            d.remove_orphans(set(), set())
            d.remove_overlay()


def table(rows: dict[str, Any]) -> str:
    """One line per placement: median and max in ms."""
    lines = [f"{'create → lease / kill → survivor ACK':<40} {'p50':>8} {'max':>8}"]
    for placement, s in rows.items():
        lines.append(f"{placement.replace('_', ' '):<40} {s['median'] * 1e3:>6.0f}ms {s['max'] * 1e3:>6.0f}ms")
    return "\n".join(lines)
