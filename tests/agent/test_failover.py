"""Node loss and drain in the database: a dead or drained node's DHCP duties move to live nodes (issue 13)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tenants import failover, network_rows, nodes, selectors, services
from tenants.choices import NodeState
from tenants.models import DhcpServer, Instance, Network, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_nodes():
    for index in (1, 2, 3):
        nodes.node_register(name=f"n{index}", vtep_address=f"10.250.0.{index}")


def servers(network):
    return [(r["node"], r["addresses"]["10.2.0.0/24"]) for r in selectors.dhcp_servers(network)]


def test_a_silent_node_goes_down_and_its_duties_move_keeping_their_addresses(three_nodes, network_factory):
    network = network_factory(cidr="10.2.0.0/24")
    before = servers(network)
    assert [node for node, _ in before] == ["n1", "n2"]
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS + 1)
    Node.objects.filter(name="n1").update(heartbeat_at=stale)
    assert failover.nodes_fail_over() == ["n1"]
    assert Node.objects.get(name="n1").state == NodeState.DOWN
    assert servers(network) == [("n3", before[0][1]), before[1]]  # rank 0 moved to n3 with its address
    assert Network.objects.get(pk=network.pk).node == "n3"  # and the network's queue with it
    assert failover.nodes_fail_over() == [] and servers(network)[0][0] == "n3"  # idempotent
    nodes.node_register(name="n1")  # its agent starts again: up, but the duty stays where it went
    assert Node.objects.get(name="n1").state == NodeState.UP and servers(network)[0][0] == "n3"


def test_a_server_failed_on_purpose_runs_again_where_its_duty_moves(three_nodes, network_factory):
    """A lab's "fail the server" stopped the dnsmasq of one node; when that node drains (or dies) the duty moves
    to a node whose dnsmasq never failed, so it must serve there (not stay marked failed with nobody to restore it)."""
    network = network_factory(cidr="10.2.0.0/24")
    DhcpServer.objects.filter(network=network, node="n1").update(failed_at=timezone.now())
    assert failover.node_drain("n1") == 1
    moved = DhcpServer.objects.get(network=network, rank=0)
    assert (moved.node, moved.failed_at) == ("n3", None)


def test_a_duty_with_nowhere_to_go_stays_and_the_network_keeps_its_other_server(network_factory):
    nodes.node_register(name="a", vtep_address="10.250.0.1")
    nodes.node_register(name="b", vtep_address="10.250.0.2")
    network = network_factory(cidr="10.2.0.0/24")
    assert failover.node_drain("a") == 0  # b already serves the network, nobody else is live
    assert Node.objects.get(name="a").state == NodeState.DRAINED
    assert [node for node, _ in servers(network)] == ["a", "b"]


def test_drain_moves_duties_off_and_undrain_takes_new_work_again(three_nodes, network_factory):
    first = network_factory(cidr="10.2.0.0/24")
    assert failover.node_drain("n2") == 1
    assert [node for node, _ in servers(first)] == ["n1", "n3"]
    second = services.network_create(tenant=first.tenant, name="after-drain")
    assert "n2" not in DhcpServer.objects.filter(network=second).values_list("node", flat=True)
    failover.node_undrain("n2")
    assert Node.objects.get(name="n2").state == NodeState.UP


def test_an_agents_heartbeat_runs_the_failover(three_nodes, network_factory):
    from tenants.agent import Agent

    network = network_factory(cidr="10.2.0.0/24")
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS + 1)
    Node.objects.filter(name="n2").update(heartbeat_at=stale)
    Agent(node="n1").heartbeat()
    assert Node.objects.get(name="n2").state == NodeState.DOWN
    assert [node for node, _ in servers(network)] == ["n1", "n3"]


def test_the_drain_command(three_nodes, network_factory):
    from io import StringIO

    from django.core.management import CommandError, call_command

    network_factory(cidr="10.2.0.0/24")
    out = StringIO()
    call_command("node_drain", "n1", stdout=out)
    assert "1 DHCP server(s) moved off" in out.getvalue()
    assert Node.objects.get(name="n1").state == NodeState.DRAINED
    call_command("node_drain", "n1", "--undo", stdout=out)
    assert Node.objects.get(name="n1").state == NodeState.UP
    with pytest.raises(CommandError, match="no node named"):
        call_command("node_drain", "nope")


def _down(name: str) -> None:
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS + 1)
    Node.objects.filter(name=name).update(heartbeat_at=stale)


def test_a_network_with_an_instance_on_a_down_node_is_deleted_without_that_node(three_nodes, network_factory):
    """Before: the down node's agent never ran its teardown share, so the network stayed ``deleting`` for good.
    Its leftovers on that host are its reconcile's to remove when it returns (no row names them any more)."""
    network = network_factory(cidr="10.2.0.0/24")
    Instance.objects.create(network=network, subnet=network.subnets.get(), hostname="vm1", node="n3",
                            mac_address="fa:16:3e:00:00:01", ip_address="10.2.0.10")
    services.network_delete(network=network)
    # The DHCP nodes n1 and n2 tear their shares down (what their teardown jobs do to the rows).
    DhcpServer.objects.filter(network=network).delete()
    network_rows.delete_unshared([Network.objects.get(pk=network.pk)])
    assert Network.objects.filter(pk=network.pk).exists()  # n3's instance is a share nobody tore down yet
    assert failover.nodes_fail_over() == []  # n3 is up: its share waits for its own job
    assert Network.objects.filter(pk=network.pk).exists()
    _down("n3")
    assert failover.nodes_fail_over() == ["n3"]
    assert not Network.objects.filter(pk=network.pk).exists()
    assert not Instance.objects.filter(hostname="vm1").exists()


def test_an_instance_deleted_on_a_down_node_goes_and_the_network_stays(three_nodes, network_factory):
    network = network_factory(cidr="10.2.0.0/24")
    keep = Instance.objects.create(network=network, subnet=network.subnets.get(), hostname="vm-keep", node="n3",
                                   mac_address="fa:16:3e:00:00:02", ip_address="10.2.0.11")
    gone = Instance.objects.create(network=network, subnet=network.subnets.get(), hostname="vm-gone", node="n3",
                                   mac_address="fa:16:3e:00:00:03", ip_address="10.2.0.12")
    services.instance_delete(instance=gone)
    _down("n3")
    failover.nodes_fail_over()
    assert list(Instance.objects.filter(network=network).values_list("hostname", flat=True)) == [keep.hostname]
    assert Network.objects.filter(pk=network.pk).exists()
