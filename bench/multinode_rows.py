"""Bench rows for several nodes (issue 13): create → lease with the instance on the DHCP server's node, against
the instance on another node, leasing across the VXLAN overlay.

Driver level, like the IPv6 rows: two simulated nodes are two drivers with prefixes of their own (the floor's and
the shell's, so the supervisor's cleanup covers their networks and instances), an underlay each on one fabric
under the floor's prefix; the overlay (fabric, underlays) is removed here when the rows end, even on failure.
Each sample is one fresh network (made first with its tunnels, not timed) and the creation of one instance on
it, timed until its client holds the lease. Opt-in: ``--figures …,multinode``.
"""

from __future__ import annotations

import time
from typing import Any

from tenants.host import HostDriver, InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec, TunnelSpec, UnderlaySpec

from .stats import summary

SAMPLES = 10
LEASE_TIMEOUT = 30.0
VTEP = {"1": "10.250.0.1", "2": "10.250.0.2"}  # inside the project's fabric namespace only (no root namespace)
SUBNET = SubnetSpec(cidr="10.78.0.0/24", gateway="10.78.0.1", dhcp_address="10.78.0.2", lease_seconds=3600)


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


def measure(drivers: dict[str, HostDriver], n: int = SAMPLES) -> dict[str, Any]:
    """``{"same_node": summary, "cross_node": summary}`` of create → lease over ``n`` samples each."""
    server, client = drivers["floor"], drivers["shell"]
    fabric_ns, fabric_bridge = server.fabric()
    try:
        server.ensure_fabric()
        for d, node in ((server, "1"), (client, "2")):
            d.ensure_underlay(UnderlaySpec(node, VTEP[node], 24, fabric_ns, fabric_bridge))
        return {"same_node": summary([_sample(server, server, j) for j in range(1, n + 1)]),
                "cross_node": summary([_sample(server, client, j) for j in range(n + 1, 2 * n + 1)])}
    finally:
        for d in (client, server):  # the server's prefix holds the fabric: it goes last
            d.remove_orphans(set(), set())
            d.remove_overlay()


def table(rows: dict[str, Any]) -> str:
    """One line per placement: median and max in ms."""
    lines = [f"{'create → lease':<40} {'p50':>8} {'max':>8}"]
    for placement, s in rows.items():
        lines.append(f"{placement.replace('_', ' '):<40} {s['median'] * 1e3:>6.0f}ms {s['max'] * 1e3:>6.0f}ms")
    return "\n".join(lines)
