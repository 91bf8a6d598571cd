"""A router on a node that has none of its network's DHCP servers or instances (issue 13): attaching a subnet or
setting a gateway sends the network's realise job to every node it is on, the router's included, ahead of the
router's own job on that node's queue (jobs of one queue run in order), so the segment is up there first."""

import pytest

from tenants import nodes, routers
from tenants.models import DhcpServer, Router
from tenants.scheduling import network_nodes, networks_nodes

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The jobs services enqueue after commit, with the node queue each goes to (nothing reaches Redis)."""
    jobs = []
    monkeypatch.setattr("tenants.queue.enqueue_now",
                        lambda func, *args, node=None: jobs.append((node, func.rsplit(".", 1)[1], args)) or True)
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: None)
    return jobs


@pytest.fixture
def apart(network_factory, external_factory, sent):
    """Two dhcp nodes serving the networks, and a router moved to a third node (compute only, with a VTEP)."""
    nodes.node_register(name="n1", vtep_address="10.250.0.1", roles="dhcp")
    nodes.node_register(name="n2", vtep_address="10.250.0.2", roles="dhcp")
    nodes.node_register(name="n3", vtep_address="10.250.0.3", roles="compute")
    external, network = external_factory(), network_factory(cidr="192.168.1.0/24")
    router = routers.router_create(tenant=network.tenant, name="r1")
    Router.objects.filter(pk=router.pk).update(node="n3")
    router.refresh_from_db()
    assert set(DhcpServer.objects.filter(network=network).values_list("node", flat=True)) == {"n1", "n2"}
    sent.clear()
    return {"router": router, "network": network, "external": external}


def _queue(sent, node):
    return [(func, args) for n, func, args in sent if n == node]


def test_attaching_realises_the_network_on_the_routers_node_before_the_router(apart, sent,
                                                                              django_capture_on_commit_callbacks):
    router, network = apart["router"], apart["network"]
    with django_capture_on_commit_callbacks(execute=True):
        routers.router_interface_add(router=router, subnet=network.subnets.get())
    assert _queue(sent, "n3") == [("realise_network", (network.pk,)), ("realise_router", (router.pk,))]
    for node in ("n1", "n2"):  # their flood lists gain the router's node
        assert _queue(sent, node) == [("realise_network", (network.pk,))]


def test_setting_and_clearing_the_gateway_converges_the_external_network_on_its_nodes(
        apart, sent, django_capture_on_commit_callbacks):
    router, external = apart["router"], apart["external"]
    with django_capture_on_commit_callbacks(execute=True):
        routers.router_set_gateway(router=router, external_network=external)
    assert _queue(sent, "n3") == [("realise_network", (external.pk,)), ("realise_router", (router.pk,))]
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        routers.router_clear_gateway(router=Router.objects.get(pk=router.pk))
    assert _queue(sent, "n3") == [("realise_router", (router.pk,))]  # no longer one of the external's nodes
    assert {n for n, func, _ in sent if func == "realise_network"} == network_nodes(external) == {external.node}


def test_the_nodes_of_many_networks_come_in_three_queries_and_match_one_by_one(
        apart, network_factory, django_assert_num_queries, django_capture_on_commit_callbacks):
    """``networks_nodes`` (what bulk writes enqueue by) says what ``network_nodes`` says of each network: DHCP
    servers, instances, a router's port and a router's gateway all count."""
    router, network, external = apart["router"], apart["network"], apart["external"]
    with django_capture_on_commit_callbacks(execute=True):
        routers.router_interface_add(router=router, subnet=network.subnets.get())
        routers.router_set_gateway(router=Router.objects.get(pk=router.pk), external_network=external)
    bare = network_factory(cidr="192.168.2.0/24")
    nets = [network, external, bare]
    with django_assert_num_queries(3):
        many = networks_nodes(nets)
    assert many == {n.pk: network_nodes(n) for n in nets}
    assert "n3" in many[network.pk] and "n3" in many[external.pk] and "n3" not in many[bare.pk]
