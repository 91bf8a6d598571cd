"""Duties in the database: a network's DHCP servers on distinct dhcp nodes, instances on compute nodes (issue 13).

Scheduling only: which rows say which node does what. The agents acting on those rows are tested elsewhere.
"""

import ipaddress

import pytest
from django.core.exceptions import ValidationError

from tenants import nodes, selectors, services
from tenants.models import DhcpServer, Instance, Network
from tenants.scheduling import network_nodes, networks_on

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
    nodes.node_register(name="net-1", roles="dhcp", vtep_address="10.250.0.1")
    nodes.node_register(name="net-2", roles="dhcp", vtep_address="10.250.0.2")
    nodes.node_register(name="cpu-1", roles="compute", vtep_address="10.250.0.3")
    nodes.node_register(name="cpu-2", roles="compute", vtep_address="10.250.0.4")
    nodes.node_register(name="cpu-plain", roles="compute")  # no VTEP: the overlay cannot reach it
    network = network_factory(cidr="10.7.0.0/24")
    placed = [services.instance_create(network=network, hostname=f"vm{i}").node for i in range(3)]
    assert placed == ["cpu-1", "cpu-2", "cpu-1"]
    assert network_nodes(network) == {"net-1", "net-2", "cpu-1", "cpu-2"}
    assert {n.name for n in networks_on("cpu-2")} == {network.name}


def test_without_the_overlay_an_instance_shares_its_networks_node(network_factory):
    nodes.node_register(name="plain-1")
    nodes.node_register(name="plain-2", roles="compute")
    network = network_factory(cidr="10.8.0.0/24")
    assert services.instance_create(network=network, hostname="vm").node == network.node == "plain-1"
    assert network_nodes(network) == {"plain-1"}


def test_nodes_without_a_vtep_get_no_standby(network_factory):
    nodes.node_register(name="plain")
    nodes.node_register(name="overlay-1", vtep_address="10.250.0.1")
    nodes.node_register(name="overlay-2", vtep_address="10.250.0.2")
    first = network_factory(cidr="10.2.0.0/24")  # "overlay-1" wins the tie by name: both with VTEPs
    assert servers(first) == ["overlay-1", "overlay-2"]
    second = network_factory(cidr="10.2.0.0/24")  # "plain" is least loaded now: it cannot share the segment
    assert servers(second) == ["plain"]


def test_an_external_network_has_one_server(three_nodes, tenant_factory):
    from tenants.routers import external_network_create

    network = external_network_create(tenant=tenant_factory(), name="public", subnet={"cidr": "203.0.113.0/24"})
    assert servers(network) == ["n1"]


def test_without_a_live_node_everything_goes_to_this_node(network_factory, settings):
    network = network_factory(cidr="10.6.0.0/24")
    instance = services.instance_create(network=network, hostname="vm")
    assert servers(network) == [settings.NETDASH_NODE] == [Instance.objects.get(pk=instance.pk).node]
    assert Network.objects.get(pk=network.pk).node == settings.NETDASH_NODE


def test_each_server_gets_its_own_spec_non_authoritative_and_announcing_both(three_nodes, network_factory):
    from tenants.host import dnsmasq
    from tenants.hostspecs import network_spec

    network = network_factory(cidr="10.5.0.0/24")
    services.instance_create(network=network, hostname="vm")
    [(first, first_address), (standby, standby_address)] = [
        (r["node"], r["addresses"]["10.5.0.0/24"]) for r in selectors.dhcp_servers(network)]
    specs = {node: network_spec(network, node) for node in (first, standby)}
    assert all(spec.ha for spec in specs.values())
    assert [str(specs[n].subnets[0].dhcp_address) for n in (first, standby)] == [first_address, standby_address]
    assert [[str(a) for a in specs[n].subnets[0].peer_dhcp_addresses] for n in (first, standby)] == [
        [standby_address], [first_address]]
    assert f"option:dns-server,{standby_address},{first_address}" in dnsmasq.render_opts(specs[standby])
    argv = dnsmasq.command_for(specs[standby], binary="dnsmasq", interface="d", pid_file="/p", lease_file="/l",
                               hosts_file="/h", opts_file="/o", log_file="/g", addn_hosts_file="/a").argv()
    assert "--dhcp-authoritative" not in argv and "--addn-hosts=/a" in argv


def test_a_single_server_network_is_served_exactly_as_before(network_factory):
    from tenants.hostspecs import network_spec

    nodes.node_register(name="alone")
    spec = network_spec(network_factory(cidr="10.4.0.0/24"), "alone")
    assert not spec.ha and spec.subnets[0].peer_dhcp_addresses == ()


def test_seeded_lease_lines_are_added_once_and_never_become_leases(network_factory):
    from tenants import lease_sync
    from tenants.host import dnsmasq
    from tenants.host.leases import parse_leases
    from tenants.hostspecs import network_spec

    network = network_factory(cidr="10.3.0.0/24")
    vm1, vm2 = (services.instance_create(network=network, hostname=h) for h in ("vm1", "vm2"))
    real = f"1999999999 {vm1.mac_address} {vm1.ip_address} vm1 01:{vm1.mac_address}\n"
    seeded = dnsmasq.seed_leases(network_spec(network), real)
    assert seeded == real + f"0 {vm2.mac_address} {vm2.ip_address} vm2 *\n"
    assert dnsmasq.seed_leases(network_spec(network), seeded) == seeded
    changes = lease_sync.sync_network_leases(network, parse_leases(seeded))
    assert [(c.ip, c.mac) for c in changes] == [(vm1.ip_address, vm1.mac_address)]


def test_a_nodes_tunnel_floods_to_every_other_node_of_the_network(three_nodes, network_factory):
    from tenants.hostspecs import tunnel_spec

    network = Network.objects.get(pk=network_factory(cidr="10.1.0.0/24").pk)  # servers on n1 and n2
    assert [str(p) for p in tunnel_spec(network, "n1").peers] == ["10.250.0.2"]
    nodes.node_register(name="plain")  # no VTEP: no overlay there
    assert tunnel_spec(network, "plain") is None
    placed = [services.instance_create(network=network, hostname=f"vm{i}").node for i in range(3)]
    assert placed == ["n1", "n2", "n3"]
    spec = tunnel_spec(network, "n3")
    assert (spec.vni, str(spec.local_vtep), [str(p) for p in spec.peers]) == (
        network.vni, "10.250.0.3", ["10.250.0.1", "10.250.0.2"])
    assert [str(p) for p in tunnel_spec(network, "n1").peers] == ["10.250.0.2", "10.250.0.3"]
