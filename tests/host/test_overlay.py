"""One network spanning three simulated nodes over kernel VXLAN, on the real kernel (issue 13).

Each node is a driver with a prefix of its own (one machine, so each node's segment namespace of a network
needs its own name), an underlay namespace with its VTEP on a veth into the shared fabric. Safety (the issue's
hard rule): the root namespace's links and addresses are exactly the same before and after, and it never holds
a UDP 4789 socket, a VTEP address or a VXLAN device.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
from host_helpers import ns_exec, wait_for

from tenants.host import (
    HostConfig,
    InstanceSpec,
    LinuxHostDriver,
    NetworkSpec,
    ReservationSpec,
    SubnetSpec,
    TunnelSpec,
    UnderlaySpec,
    inspect_namespace,
    netns,
)

pytestmark = pytest.mark.host

if os.geteuid() != 0:  # CI runs as root, so these never silently skip there
    pytest.skip("host tests need root", allow_module_level=True)

NODES = (1, 2, 3)
VTEP = {i: f"10.250.0.{i}" for i in NODES}  # a private range the root namespace does not use (checked below)
CIDR = "10.77.0.0/24"


def root_view() -> dict[str, str]:
    run = lambda *argv: subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # noqa: E731
    return {"link": run("ip", "-br", "link"), "addr": run("ip", "-br", "addr"), "udp": run("ss", "-uan")}


def assert_root_clean(view: dict[str, str]) -> None:
    assert ":4789" not in view["udp"]
    assert "10.250.0." not in view["addr"] + view["udp"]
    assert "vxlan" not in subprocess.run(["ip", "-d", "link"], capture_output=True, text=True).stdout


class Overlay:
    """A fabric and three nodes' drivers, all under this test's own prefixes and state dirs."""

    def __init__(self) -> None:
        base = "o" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(3))
        self.dir = Path(tempfile.mkdtemp(prefix="netdash-overlay-"))
        os.chmod(self.dir, 0o755)  # noqa: S103 - dnsmasq drops to its own user and must traverse it
        self.fab = LinuxHostDriver(HostConfig(prefix=f"{base}-", state_dir=self.dir / "fabric"))
        self.node = {i: LinuxHostDriver(HostConfig(prefix=f"{base}{i}-", state_dir=self.dir / f"n{i}")) for i in NODES}
        self.prefixes = (f"{base}-", *(f"{base}{i}-" for i in NODES))

    def underlay(self, i: int) -> UnderlaySpec:
        ns, bridge = self.fab.fabric()
        return UnderlaySpec(str(i), VTEP[i], 24, ns, bridge)

    def network(self, nid: str, vni: int, dhcp_node: int, reservations: list[ReservationSpec]) -> None:
        """The network's segment on every node, its dnsmasq on ``dhcp_node``, and its tunnels."""
        subnet = SubnetSpec(cidr=CIDR, gateway="10.77.0.1", dhcp_address="10.77.0.2", lease_seconds=3600)
        for i in NODES:
            served = i == dhcp_node
            self.node[i].ensure_network(NetworkSpec(nid, (subnet,) if served else (),
                                                    tuple(reservations) if served else ()))
            self.node[i].ensure_tunnel(self.tunnel(nid, vni, i, [j for j in NODES if j != i]))

    def tunnel(self, nid: str, vni: int, i: int, peers: list[int]) -> TunnelSpec:
        return TunnelSpec(nid, vni, str(i), VTEP[i], tuple(VTEP[j] for j in peers))

    def lease(self, i: int, iid: str, nid: str, mac: str) -> str:
        d = self.node[i]
        d.ensure_instance(InstanceSpec(iid, nid, mac, f"h{iid}"))
        lease = d.wait_instance_lease(iid, timeout=30)  # however long a loaded machine needs
        assert lease is not None, f"instance {iid} on node {i} got no lease"
        return str(lease.ip)

    def cleanup(self) -> list[str]:
        for d in (*self.node.values(), self.fab):
            d.remove_orphans(set(), set())
            d.remove_overlay()
        shutil.rmtree(self.dir, ignore_errors=True)
        return [n for n in netns.list_names() if n.startswith(self.prefixes)]


@pytest.fixture
def overlay():
    before = root_view()
    assert_root_clean(before)
    made = Overlay()
    try:
        yield made
    finally:
        left = made.cleanup()
        after = root_view()
        assert left == []
        assert (after["link"], after["addr"]) == (before["link"], before["addr"])
        assert_root_clean(after)


def test_a_network_spans_three_nodes_and_two_tenants_on_one_cidr_stay_apart(overlay):
    o = overlay
    o.fab.ensure_fabric()
    for i in NODES:
        o.node[i].ensure_underlay(o.underlay(i))
    a1, a3, b2 = "02:00:00:0a:00:01", "02:00:00:0a:00:03", "02:00:00:0b:00:02"
    o.network("a1", 101, 2, [ReservationSpec(a1, "ha11", "10.77.0.11"), ReservationSpec(a3, "ha13", "10.77.0.13")])
    o.network("b1", 102, 3, [ReservationSpec(b2, "hb12", "10.77.0.13")])  # tenant B: same CIDR, same address

    # Node 1's instance leases from the dnsmasq on node 2 across the VXLAN, and pings node 3's instance.
    assert o.lease(1, "c1", "a1", a1) == "10.77.0.11"
    assert o.lease(3, "c3", "a1", a3) == "10.77.0.13"
    assert o.lease(2, "d2", "b1", b2) == "10.77.0.13"  # B's instance, from B's dnsmasq on node 3
    ns_exec(o.node[1].names.inst_ns("c1"), "busybox", "ping", "-c", "2", "-W", "3", "10.77.0.13")
    neigh = {x.ip: x.mac for x in inspect_namespace(o.node[1].names.inst_ns("c1")).neighbours}
    assert neigh["10.77.0.13"] == a3  # tenant A's instance answered, never tenant B's on the same address
    assert {x.mac for x in o.node[2].network_leases("a1")} == {a1, a3}
    assert {x.mac for x in o.node[3].network_leases("b1")} == {b2}

    # The sockets are in the underlays only; segments hold no underlay address; full-size frames fit.
    for i in NODES:
        assert ":4789" in ns_exec(o.node[i].names.underlay_ns(str(i)), "ss", "-uan").stdout
        seg = o.node[i].names.seg_ns("a1")
        assert ":4789" not in ns_exec(seg, "ss", "-uan").stdout
        assert "10.250." not in ns_exec(seg, "ip", "-br", "addr").stdout
        assert " mtu 1500 " in ns_exec(seg, "ip", "-o", "link", "show", "dev", o.node[i].names.vxlan("a1")).stdout

    # The flood list is reconciled by diffing: a peer dropped from the spec goes, a re-added one comes back.
    d1, seg1, vx1 = o.node[1], o.node[1].names.seg_ns("a1"), o.node[1].names.vxlan("a1")
    flood = lambda: sorted(line.split()[2] for line in ns_exec(seg1, "bridge", "fdb", "show", "dev", vx1).stdout  # noqa: E731
                           .splitlines() if line.startswith("00:00:00:00:00:00"))
    assert flood() == [VTEP[2], VTEP[3]]
    d1.ensure_tunnel(o.tunnel("a1", 101, 1, [2]))
    assert flood() == [VTEP[2]]
    d1.ensure_tunnel(o.tunnel("a1", 101, 1, [2, 3]))
    assert flood() == [VTEP[2], VTEP[3]]

    # Deleting a node's underlay deletes the VXLAN devices made from it; ensuring again brings them back.
    d1.remove_underlay("1")
    # The kernel frees a deleted namespace's devices asynchronously (and with them those made from it, and the
    # veth's fabric end: re-creating the pair while that end is still being freed fails with ENODEV).
    fabric_ns, port1 = o.underlay(1).fabric_ns, d1.names.fabric_port("1")
    assert wait_for(lambda: vx1 not in {x.name for x in inspect_namespace(seg1).links}
                    and port1 not in {x.name for x in inspect_namespace(fabric_ns).links}, timeout=30)
    d1.ensure_underlay(o.underlay(1))
    d1.ensure_tunnel(o.tunnel("a1", 101, 1, [2, 3]))
    ns_exec(o.node[1].names.inst_ns("c1"), "busybox", "ping", "-c", "2", "-W", "3", "10.77.0.13")
    assert_root_clean(root_view())


@pytest.mark.parametrize("kwargs, message", [
    ({"vni": 0}, "VNI 0 must be"), ({"vni": 2**24}, "must be 1-"), ({"local_vtep": "8.8.8.8"}, "private IPv4"),
    ({"peers": ("10.250.0.1",)}, "its own peer"), ({"peers": "10.250.0.2"}, "must be a list"),
])
def test_tunnel_specs_refuse_bad_input(kwargs, message):
    from tenants.host import HostInputError

    with pytest.raises(HostInputError, match=message):
        TunnelSpec(**{"network_kernel_id": "a1", "vni": 101, "node_id": "1", "local_vtep": "10.250.0.1", **kwargs})
