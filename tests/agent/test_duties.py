"""Duties in the database: a network's DHCP servers on distinct dhcp nodes, instances on compute nodes (issue 13).

Scheduling only: which rows say which node does what. The agents acting on those rows are tested elsewhere.
"""

import ipaddress

import pytest
from django.core.exceptions import ValidationError

from tenants import nodes, selectors, services
from tenants.models import DhcpServer, Instance, Network
from tenants.scheduling import network_nodes

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_nodes():
    """Three live nodes with both roles, registered the way their agents do it."""
    for index in (1, 2, 3):
        nodes.node_register(name=f"n{index}", vtep_address=f"10.250.0.{index}")
    return ["n1", "n2", "n3"]


def servers(network):
    return list(DhcpServer.objects.filter(network=network).order_by("rank").values_list("node", flat=True))


def test_each_network_gets_two_servers_on_distinct_nodes_least_loaded_first(three_nodes, tenant_factory):
    tenant = tenant_factory()
    made = [services.network_create(tenant=tenant, name=f"net{i}", subnet={"cidr": f"10.{i}.0.0/24"})
            for i in range(3)]
    # Fewest servers first; among equals, fewer first servers (n2 before n1 for the second network).
    assert [servers(n) for n in made] == [["n1", "n2"], ["n3", "n2"], ["n1", "n3"]]
    assert [n.node for n in made] == ["n1", "n3", "n1"]  # the first server's node is the network's queue


def test_a_standby_server_has_its_own_address_that_ipam_never_hands_out(three_nodes, network_factory, settings):
    network = network_factory(cidr="10.9.0.0/29")  # usable .1-.6: gateway .1, DHCP .2, pools .3-.6
    subnet = network.subnets.get()
    rows = selectors.dhcp_servers(network)
    assert [(r["node"], r["rank"], r["node_live"]) for r in rows] == [("n1", 0, True), ("n2", 1, True)]
    first, standby = (r["addresses"]["10.9.0.0/29"] for r in rows)
    assert first == subnet.dhcp_address and standby not in (subnet.dhcp_address, subnet.gateway)
    assert ipaddress.ip_address(standby) in subnet.ip_network
    with pytest.raises(ValidationError, match="standby DHCP server"):
        services.instance_create(network=network, hostname="fixed", ip_address=standby)
    taken = [services.instance_create(network=network, hostname=f"vm{i}").ip_address for i in range(3)]
    assert standby not in taken and len(set(taken)) == 3
    with pytest.raises(ValidationError, match="no free addresses"):
        services.instance_create(network=network, hostname="vm-too-many")
    with pytest.raises(ValidationError, match="standby DHCP server"):
        services.subnet_update(subnet=subnet, dhcp_address=standby, allocation_pools=[["10.9.0.2", "10.9.0.2"]])


def test_fewer_dhcp_nodes_than_asked_means_as_many_servers_as_there_are(network_factory, settings):
    nodes.node_register(name="only-dhcp", roles="dhcp")
    nodes.node_register(name="compute-a", roles="compute")
    settings.NETDASH_DHCP_SERVERS_PER_NETWORK = 3
    network = network_factory(cidr="10.8.0.0/24")
    assert servers(network) == ["only-dhcp"] and network.node == "only-dhcp"
    assert len(selectors.dhcp_servers(network)) == 1  # the page's "no standby"


def test_instances_go_to_compute_nodes_least_loaded_and_the_network_is_present_on_all_of_them(
        network_factory):
    nodes.node_register(name="net-1", roles="dhcp")
    nodes.node_register(name="net-2", roles="dhcp")
    nodes.node_register(name="cpu-1", roles="compute")
    nodes.node_register(name="cpu-2", roles="compute")
    network = network_factory(cidr="10.7.0.0/24")
    placed = [services.instance_create(network=network, hostname=f"vm{i}").node for i in range(3)]
    assert placed == ["cpu-1", "cpu-2", "cpu-1"]
    assert network_nodes(network) == {"net-1", "net-2", "cpu-1", "cpu-2"}


def test_an_external_network_has_one_server(three_nodes, tenant_factory):
    from tenants.routers import external_network_create

    network = external_network_create(tenant=tenant_factory(), name="public", subnet={"cidr": "203.0.113.0/24"})
    assert servers(network) == ["n1"]


def test_without_a_live_node_everything_goes_to_this_node(network_factory, settings):
    network = network_factory(cidr="10.6.0.0/24")
    instance = services.instance_create(network=network, hostname="vm")
    assert servers(network) == [settings.NETDASH_NODE] == [Instance.objects.get(pk=instance.pk).node]
    assert Network.objects.get(pk=network.pk).node == settings.NETDASH_NODE
