"""Networks are scheduled to the least-loaded live node; a node is live while its agent's heartbeat is fresh."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants import nodes, services
from tenants.choices import NodeState
from tenants.models import Network, Node, Tenant
from tenants.scheduling import schedule_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered_nodes():
    """Two nodes registered the way ``manage.py agent`` registers its node at start."""
    for name in ("node-a", "node-b"):
        nodes.node_register(name=name)
    return ["node-a", "node-b"]


def test_without_live_nodes_networks_go_to_this_node():
    assert not nodes.live_nodes().exists()
    assert schedule_node() == settings.NETDASH_NODE


def test_least_loaded_live_node_wins(registered_nodes):
    assert list(nodes.live_nodes().values_list("name", flat=True)) == ["node-a", "node-b"]
    tenant = Tenant.objects.create(name="T", slug="t")
    first = services.network_create(tenant=tenant, name="one")
    second = services.network_create(tenant=tenant, name="two")
    third = services.network_create(tenant=tenant, name="three")
    assert [first.node, second.node] == ["node-a", "node-b"]
    assert third.node == "node-a"
    assert Network.objects.filter(node="node-a").count() == 2


def test_a_node_with_a_stale_heartbeat_or_not_up_gets_no_new_networks(registered_nodes):
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS + 1)
    Node.objects.filter(name="node-a").update(heartbeat_at=stale)
    assert schedule_node() == "node-b"
    assert nodes.node_heartbeat("node-a")
    Node.objects.filter(name="node-b").update(state=NodeState.DRAINED)
    assert schedule_node() == "node-a"
    Node.objects.filter(name="node-a").update(state=NodeState.DOWN)
    assert schedule_node() == settings.NETDASH_NODE


def test_registering_keeps_a_drain_and_brings_a_down_node_back():
    nodes.node_register(name="n1", vtep_address="10.250.0.1", roles="compute")
    node = Node.objects.get(name="n1")
    assert (node.vtep_address, node.dhcp, node.compute, node.state) == ("10.250.0.1", False, True, NodeState.UP)
    Node.objects.filter(name="n1").update(state=NodeState.DRAINED)
    assert nodes.node_register(name="n1", roles="dhcp").state == NodeState.DRAINED
    Node.objects.filter(name="n1").update(state=NodeState.DOWN)
    node = nodes.node_register(name="n1", roles="dhcp")
    assert (node.state, node.vtep_address, node.dhcp, node.compute) == (NodeState.UP, None, True, False)
    with pytest.raises(ValidationError, match="unknown node role"):
        nodes.parse_roles("dhcp,storage")


def test_the_agent_registers_its_node_and_heartbeats(settings):
    from tenants.agent import Agent

    settings.NETDASH_NODE_VTEP = "10.250.0.7"
    agent = Agent(node="agent-node")
    agent.register()
    assert Node.objects.get(name="agent-node").vtep_address == "10.250.0.7"
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS + 1)
    Node.objects.filter(name="agent-node").update(heartbeat_at=stale)
    assert not nodes.live_nodes().filter(name="agent-node").exists()
    agent.heartbeat()
    assert nodes.live_nodes().filter(name="agent-node").exists()
    Node.objects.filter(name="agent-node").delete()
    agent.heartbeat()  # an administrator deleted the row: the next heartbeat registers the node again
    assert nodes.live_nodes().filter(name="agent-node").exists()


@pytest.mark.django_db(transaction=True)
def test_jobs_go_to_the_queue_of_the_node_the_network_is_scheduled_to(registered_nodes):
    from tenants.queue import agent_queue

    for node in registered_nodes:
        agent_queue(node).empty()
    tenant = Tenant.objects.create(name="T", slug="t")
    network = services.network_create(tenant=tenant, name="one")
    assert network.node == "node-a"
    jobs = agent_queue("node-a").get_jobs()
    assert [(j.func_name, j.args) for j in jobs] == [("tenants.jobs.realise_network", (network.pk,))]
    assert agent_queue("node-b").count == 0
    agent_queue("node-a").empty()


def test_every_network_gets_a_vni_of_its_own_from_the_database(tenant_factory):
    first = services.network_create(tenant=tenant_factory(), name="one", subnet={"cidr": "10.5.0.0/24"})
    second = services.network_create(tenant=tenant_factory(), name="one", subnet={"cidr": "10.5.0.0/24"})
    vnis = [Network.objects.get(pk=n.pk).vni for n in (first, second)]
    assert vnis == [first.pk, second.pk] and len(set(vnis)) == 2
