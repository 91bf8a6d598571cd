"""`manage.py seed_demo`: the two overlapping demo tenants, each routed to the simulated upstream, idempotent."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tenants import nodes
from tenants.choices import Role
from tenants.models import DhcpServer, FloatingIP, Instance, Membership, Network, Router, Subnet, Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("outbox")]


def snapshot():
    return {
        "tenants": sorted(Tenant.objects.values_list("slug", flat=True)),
        "users": sorted(get_user_model().objects.values_list("username", flat=True)),
        "networks": sorted(Network.objects.values_list("tenant__slug", "name", "kernel_id")),
        "subnets": sorted(Subnet.objects.values_list("network__name", "cidr", "gateway", "dhcp_address")),
        "instances": sorted(Instance.objects.values_list("hostname", "ip_address", "mac_address")),
        "memberships": sorted(Membership.objects.values_list("user__username", "tenant__slug", "role")),
        "routers": sorted(Router.objects.values_list("tenant__slug", "name", "external_network__name",
                                                     "external_ip", "interfaces__subnet__network__name")),
        "floating_ips": sorted(FloatingIP.objects.values_list("tenant__slug", "network__name", "address",
                                                              "instance__hostname")),
    }


def test_seed_demo_creates_two_overlapping_tenants_and_is_idempotent(monkeypatch):
    monkeypatch.setenv("NETDASH_ADMIN_PASSWORD", "admin-pw-from-env-123")
    monkeypatch.delenv("NETDASH_DEMO_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    first = snapshot()
    assert first["tenants"] == ["acme", "globex", "ops"]
    assert first["subnets"] == [("acme-net", "192.168.1.0/24", "192.168.1.1", "192.168.1.2"),
                                ("acme-net", "2001:db8:ac::/64", "2001:db8:ac::1", "2001:db8:ac::2"),
                                ("globex-net", "192.168.1.0/24", "192.168.1.1", "192.168.1.2"),
                                ("public", "203.0.113.0/24", "203.0.113.1", "203.0.113.2")]
    # Acme's instance is dual stack: a DHCPv6 reservation from IPAM beside its IPv4 address.
    acme_vm = Instance.objects.get(hostname="acme-vm1")
    assert (acme_vm.ipv6_subnet.ipv6_address_mode, acme_vm.ipv6_address) == ("dhcpv6-stateful", "2001:db8:ac::3")
    assert Instance.objects.get(hostname="globex-vm1").ipv6_address is None
    public = Network.objects.get(name="public")
    assert public.external and public.simulated_upstream and public.tenant.slug == "ops"
    # Each tenant's router joins its 192.168.1.0/24 to the external network, with an external address of its own
    # and a floating IP on its instance: upstream tells the two 192.168.1.3 apart.
    (_, acme_router, acme_ext, acme_ip, acme_net), (_, globex_router, globex_ext, globex_ip, globex_net) = \
        first["routers"]
    assert (acme_router, acme_ext, acme_net) == ("acme-router", "public", "acme-net")
    assert (globex_router, globex_ext, globex_net) == ("globex-router", "public", "globex-net")
    fips = first["floating_ips"]
    assert [(t, n, h) for t, n, _, h in fips] == [("acme", "public", "acme-vm1"), ("globex", "public", "globex-vm1")]
    externals = {acme_ip, globex_ip, *(a for _, _, a, _ in fips)}
    assert len(externals) == 4 and all(a.startswith("203.0.113.") for a in externals)
    # The same address in both tenants: overlap across tenants is the point of the demo.
    assert [(h, ip) for h, ip, _ in first["instances"]] == [("acme-vm1", "192.168.1.3"), ("globex-vm1", "192.168.1.3")]
    assert first["memberships"] == [("alice", "acme", Role.ADMIN), ("bob", "globex", Role.ADMIN)]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin-pw-from-env-123")
    assert "(from $NETDASH_ADMIN_PASSWORD)" in out.getvalue()
    assert "admin-pw-from-env-123" not in out.getvalue()
    assert Subnet.objects.get(network__name="acme-net", ip_version=4).domain_name == "acme.internal"

    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert snapshot() == first
    assert "created user" not in again.getvalue()  # no new passwords printed on the second run


def test_with_three_nodes_the_seed_spreads_a_network_over_them(monkeypatch):
    """`NODES=3 make run`'s nodes (run.sh's roles): the spread network's instances sit on the compute node, apart
    from its two DHCP servers, and the demo routers on a node none of their networks' servers is on."""
    for i, roles in ((1, "dhcp"), (2, "dhcp"), (3, "compute")):
        nodes.node_register(name=f"node{i}", vtep_address=f"10.250.0.{i}", roles=roles)
    monkeypatch.setenv("NETDASH_ADMIN_PASSWORD", "admin-pw-from-env-123")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    spread = Network.objects.get(name="acme-spread")
    servers = set(DhcpServer.objects.filter(network=spread).values_list("node", flat=True))
    hosts = dict(spread.instances.values_list("hostname", "node"))
    assert servers == {"node1", "node2"} and hosts == {"acme-vm2": "node3", "acme-vm3": "node3"}
    assert "acme-vm2 on node3, acme-vm3 on node3" in out.getvalue()
    assert set(Router.objects.values_list("node", flat=True)) == {"node3"}  # routers apart from their networks
    call_command("seed_demo", stdout=io.StringIO())
    assert spread.instances.count() == 2


def test_with_one_node_there_is_no_spread_network():
    nodes.node_register(name="node1", vtep_address="10.250.0.1")
    call_command("seed_demo", stdout=io.StringIO())
    assert not Network.objects.filter(name="acme-spread").exists()
