"""Agents of two nodes on one machine share a prefix and a state root: neither reaps the other's objects.

What keeps them apart: each node has its own state directory (so pid and lease files, and processes started from
it, are its own), and the database tells each which networks and instances belong to the other nodes.
"""

from __future__ import annotations

import os

import pytest

from tenants.host import HostConfig, InstanceSpec, LinuxHostDriver, NetworkSpec, ReservationSpec, SubnetSpec, netns

pytestmark = pytest.mark.host

if os.geteuid() != 0:  # CI runs as root, so these never silently skip there
    pytest.skip("host tests need root", allow_module_level=True)


def realise(d: LinuxHostDriver, nid: str, iid: str, mac: str, ip: str) -> None:
    subnet = SubnetSpec(cidr="192.168.1.0/24", gateway="192.168.1.1", dhcp_address="192.168.1.2",
                        domain="t1.internal", lease_seconds=3600)
    d.ensure_network(NetworkSpec(nid, (subnet,), (ReservationSpec(mac, iid, ip),)))
    d.ensure_instance(InstanceSpec(iid, nid, mac, f"h{iid}"))
    assert d.wait_instance_lease(iid, timeout=30) is not None  # however long a loaded machine needs


def state(d: LinuxHostDriver, nid: str, iid: str) -> tuple[object, ...]:
    """What another node's agent must never change: processes, namespaces (by inode) and state files."""
    n = d.names
    return (d.dnsmasq_pid(nid), d.udhcpc_pid(iid), netns.inode(n.seg_ns(nid)), netns.inode(n.dhcp_ns(nid)),
            netns.inode(n.inst_ns(iid)), n.leases(nid).read_text(), d.instance_lease(iid))


def test_two_nodes_on_one_prefix_and_state_root_reconcile_without_touching_each_other(host_config):
    root = host_config()
    n1, n2 = (LinuxHostDriver(HostConfig(prefix=root.prefix, state_dir=root.state_dir / node)) for node in ("n1", "n2"))
    realise(n1, "a1", "b1", "02:00:00:00:01:01", "192.168.1.11")
    realise(n2, "a2", "b2", "02:00:00:00:02:01", "192.168.1.12")
    before = {1: state(n1, "a1", "b1"), 2: state(n2, "a2", "b2")}
    assert None not in before[1] + before[2]
    for _ in range(3):
        netns.create(n1.names.inst_ns("ff"))  # an orphan of node 1's own: still reaped
        found = n1.remove_orphans({"a1"}, {"b1"}, foreign_networks={"a2"}, foreign_instances={"b2"})
        assert (found.networks.keys(), found.instances.keys(), found.stray_pids) == ({"a1"}, {"b1", "ff"}, {})
        assert not netns.exists(n1.names.inst_ns("ff"))
        found = n2.remove_orphans({"a2"}, {"b2"}, foreign_networks={"a1"}, foreign_instances={"b1"})
        assert (found.networks.keys(), found.instances.keys(), found.stray_pids) == ({"a2"}, {"b2"}, {})
        assert {1: state(n1, "a1", "b1"), 2: state(n2, "a2", "b2")} == before
    # Untold what belongs to node 2, node 1 takes its network for an orphan: the database's word is what keeps
    # another node's objects alive, and this shows the check above can fail.
    n1.remove_orphans({"a1"}, {"b1"})
    assert (n2.dnsmasq_pid("a2"), n2.udhcpc_pid("b2"), netns.exists(n2.names.seg_ns("a2"))) == (None, None, False)
    assert state(n1, "a1", "b1") == before[1]
