"""Equivalent commands of a network on two nodes: each node's VXLAN port and flood list, replayable by hand."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import tempfile
from pathlib import Path

import pytest

from teach import selectors
from tenants import nodes
from tenants.host import HostConfig, LinuxHostDriver, NetworkSpec, netns
from tenants.hostspecs import fabric_driver, names, tunnel_spec
from tenants.models import Network

pytestmark = [pytest.mark.django_db(transaction=True)]

VTEP = {"n1": "10.250.0.1", "n2": "10.250.0.2"}  # the range tests/host/test_overlay.py checks the root ns lacks


@pytest.fixture
def two_node_network(network_factory):
    """A network whose two DHCP servers sit on two nodes with VTEPs (so it spans both over VXLAN)."""
    for name, vtep in VTEP.items():
        nodes.node_register(name=name, vtep_address=vtep)
    return Network.objects.get(pk=network_factory(cidr="10.4.0.0/24").pk)


def test_each_node_shows_its_vxlan_with_the_vni_and_a_flood_entry_per_peer(two_node_network):
    network = two_node_network
    blocks = selectors.network_commands(network)
    for node, peer in (("n1", "n2"), ("n2", "n1")):
        cmds = next(b.commands for b in blocks if b.title == f"tunnel of network {network.name} on node {node} "
                                                                f"(VNI {network.vni})")
        vxlan = [c for c in cmds if " type vxlan " in c]
        assert len(vxlan) == 1 and f" id {network.vni} local {VTEP[node]} " in vxlan[0]
        floods = [c for c in cmds if c.startswith("bridge ")]
        dev = names().vxlan(network.kernel_id)
        assert len(floods) == 1 and floods[0].endswith(f" fdb append 00:00:00:00:00:00 dev {dev} dst {VTEP[peer]}")
    overlay = [b for b in blocks if b.title.startswith(("fabric", "underlay", "tunnel"))]
    assert len(overlay) == 6  # fabric, underlay and tunnel, per node
    for block in overlay:  # every step says why, on the line before it
        whys, steps = block.commands[0::2], block.commands[1::2]
        assert len(whys) == len(steps) and all(w.startswith("# ") and len(w) > 10 for w in whys), block.commands
        first = "the fabric stands in" if block.title.startswith("fabric") else (
            "the node's underlay" if block.title.startswith("underlay") else f"# VNI {network.vni} keeps")
        assert first in whys[0], block.commands
    assert selectors.command_count(blocks) == sum(len(b.commands) for b in blocks) - sum(
        len(b.commands) // 2 for b in overlay)


@pytest.mark.host
def test_tunnel_commands_replayed_with_bash_build_what_the_driver_builds(two_node_network):
    """Each node's underlay and tunnel blocks, run by bash in a simulated fabric of this test's own prefixes,
    build the VXLAN devices and flood entries the driver's own ensure then finds in place (it changes nothing)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    network, nid = two_node_network, two_node_network.kernel_id
    base = "k" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(3))
    with tempfile.TemporaryDirectory(prefix="teach-overlay-") as tmp:
        Path(tmp).chmod(0o755)  # the driver checks dnsmasq could reach its state dir
        d = {n: LinuxHostDriver(HostConfig(prefix=f"{base}{i}-", state_dir=Path(tmp) / n))
             for i, n in enumerate(VTEP, 1)}
        try:
            for i, (node, nd) in enumerate(d.items()):
                nd.ensure_network(NetworkSpec(nid, (), ()))  # the segment the tunnel plugs into
                blocks = [b for b in selectors.node_commands(network, node, host_driver=nd)
                          if b.title.startswith(("underlay", "tunnel")) or (i == 0 and b.title.startswith("fabric"))]
                r = subprocess.run(["bash", "-e", "-c", selectors.as_script(blocks)], capture_output=True, text=True,
                                   timeout=60)
                assert r.returncode == 0, r.stderr
            for node, nd in d.items():
                seg, dev = nd.names.seg_ns(nid), nd.names.vxlan(nid)
                link = subprocess.run(["ip", "-d", "-n", seg, "link", "show", dev], capture_output=True,
                                      text=True, check=True).stdout
                assert f"vxlan id {network.vni} local {VTEP[node]} " in link
                assert f"master {nd.names.bridge(nid)}" in link
                def floods() -> list[list[str]]:  # learned MACs come and go with traffic: only the flood list
                    out = subprocess.run(["bridge", "-n", seg, "fdb", "show", "dev", dev],  # noqa: B023
                                         capture_output=True, text=True, check=True).stdout
                    return [x.split()[:3] for x in out.splitlines() if x.startswith("00:00:00:00:00:00")]

                before, index = floods(), link.split(":", 1)[0]
                assert before == [["00:00:00:00:00:00", "dst", p] for p in VTEP.values() if p != VTEP[node]]
                nd.ensure_tunnel(tunnel_spec(network, node))  # the driver's own plan: nothing to rebuild
                after = subprocess.run(["ip", "-n", seg, "link", "show", dev], capture_output=True, text=True,
                                       check=True).stdout
                assert (after.split(":", 1)[0], floods()) == (index, before)
        finally:
            for nd in d.values():
                nd.remove_orphans(set(), set())
                nd.remove_overlay()
            fabric_driver().remove_overlay()
            fabric_ns = fabric_driver().fabric()[0]
            assert not [n for n in netns.list_names() if n.startswith(base) or n == fabric_ns]
