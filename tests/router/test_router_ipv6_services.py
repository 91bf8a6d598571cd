"""Routed IPv6 in the database layer: the ULA subnet pool, the rule that routed prefixes never overlap (named in
the error), the host specs the rows become, and the API/form inputs (fuzzed: never a server error)."""

import ipaddress

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from portal.forms import SubnetCreateForm
from tenants import hostspecs, routers, services, subnet_pools
from tenants.models import Subnet, SubnetPool

pytestmark = pytest.mark.django_db
V6 = {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}


def v6_network(tenant, name="net6", cidr=None):
    """A tenant network with an IPv4 subnet and an IPv6 one (``cidr``, or the next /64 of the pool)."""
    network = services.network_create(tenant=tenant, name=name, subnet={"cidr": "10.0.1.0/24"})
    if cidr is None:
        subnet = subnet_pools.subnet_create_from_pool(network=network, **V6)
    else:
        subnet = services.subnet_create(network=network, cidr=cidr, **V6)
    return network, subnet


def test_the_pool_is_a_ula_48_drawn_once_and_kept(outbox):
    first = subnet_pools.pool()
    net = ipaddress.ip_network(first.prefix)
    assert net.prefixlen == 48 and net.subnet_of(subnet_pools.ULA) and not net.overlaps(subnet_pools.HOST_RESERVED)
    assert subnet_pools.pool().pk == first.pk and SubnetPool.objects.count() == 1


def test_a_random_global_id_of_zero_is_drawn_again(monkeypatch):
    draws = iter([0, 0x123456789a])  # 0 would be fd00::/48, which holds the machine's own fd00::/64
    monkeypatch.setattr(subnet_pools.secrets, "randbits", lambda bits: next(draws))
    assert str(subnet_pools._random_ula()) == "fd12:3456:789a::/48"


@override_settings(NETDASH_ULA_PREFIX="fd99:8877:6655::/48")
def test_the_configured_prefix_is_used():
    assert subnet_pools.pool().prefix == "fd99:8877:6655::/48"


@pytest.mark.parametrize("bad", ["fd00::/48", "fd99::/40", "2001:db8::/48", "nonsense", "fd99:1:2::1/48"])
def test_a_bad_configured_prefix_is_refused(bad):
    with override_settings(NETDASH_ULA_PREFIX=bad), pytest.raises(Exception, match="NETDASH_ULA_PREFIX"):
        subnet_pools.pool()


def test_pool_subnets_are_distinct_64s_across_tenants(tenant_factory, outbox):
    prefix = ipaddress.ip_network(subnet_pools.pool().prefix)
    got = [v6_network(tenant_factory(slug=f"p{i}"))[1] for i in range(3)]
    nets = [s.ip_network for s in got]
    assert len(set(nets)) == 3 and all(n.prefixlen == 64 and n.subnet_of(prefix) for n in nets)
    assert all(s.ip_version == 6 and s.gateway for s in got)
    Subnet.objects.filter(pk=got[0].pk).delete()  # a freed /64 is handed out again
    assert v6_network(tenant_factory(slug="p9"))[1].ip_network == nets[0]


def test_pool_refuses_a_cidr_too(tenant_factory, outbox):
    network = services.network_create(tenant=tenant_factory(), name="n", subnet={"cidr": "10.0.1.0/24"})
    with pytest.raises(Exception, match="Leave the CIDR empty"):
        subnet_pools.subnet_create_from_pool(network=network, cidr="fd11::/64", **V6)


def test_an_overlapping_routed_prefix_is_refused_and_names_the_conflict(tenant_factory, outbox):
    a, b = tenant_factory(slug="ta"), tenant_factory(slug="tb")
    net_a, sub_a = v6_network(a, cidr="fd11:2233:4455:1::/64")
    ra = routers.router_create(tenant=a, name="ra")
    routers.router_interface_add(router=ra, subnet=sub_a)
    # isolated, the same prefix is fine in another tenant and in another network of the same tenant
    _, sub_b = v6_network(b, cidr="fd11:2233:4455:1::/64")
    _, sub_a2 = v6_network(a, name="other", cidr="fd11:2233:4455:1::/64")
    rb = routers.router_create(tenant=b, name="rb")
    with pytest.raises(Exception) as refused:
        routers.router_interface_add(router=rb, subnet=sub_b)
    text = str(refused.value)
    assert "fd11:2233:4455:1::/64 overlaps fd11:2233:4455:1::/64" in text and "another tenant" in text
    assert "ra" not in text.split("another tenant")[0].split("(")[1]  # nothing of tenant a's names leaks
    ra2 = routers.router_create(tenant=a, name="ra2")
    with pytest.raises(Exception, match="network 'net6', routed by router 'ra'"):
        routers.router_interface_add(router=ra2, subnet=sub_a2)
    # IPv4 behind different routers may still overlap: it is translated
    routers.router_interface_add(router=rb, subnet=services.network_create(
        tenant=b, name="v4", subnet={"cidr": "10.0.1.0/24"}).subnets.get())


def test_attaching_a_v6_subnet_reconverges_its_network_and_the_router_takes_the_ra(
        tenant_factory, external_factory, outbox, django_capture_on_commit_callbacks):
    external = external_factory(simulated_upstream=True)
    ext6 = services.subnet_create(network=external, cidr="2001:db8:ff::/64", ipv6_address_mode="dhcpv6-stateful",
                                  enable_dhcp=False)
    tenant = tenant_factory()
    network, subnet = v6_network(tenant)
    assert hostspecs.network_spec(network).subnets[1].ipv6_ra_mode == "slaac"  # isolated: dnsmasq advertises
    router = routers.router_create(tenant=tenant, name="r", external_network=external)
    outbox["jobs"].clear()
    with django_capture_on_commit_callbacks(execute=True):
        routers.router_interface_add(router=router, subnet=subnet)
    assert ("tenants.jobs.realise_network", (network.pk,)) in outbox["jobs"]
    assert ("tenants.jobs.realise_network", (external.pk,)) in outbox["jobs"]
    assert hostspecs.network_spec(network).subnets[1].ipv6_ra_mode is None  # routed: the router advertises
    from tenants.router_convergence import load_router
    spec = hostspecs.router_spec(load_router(router.pk))
    (port,) = spec.ports
    assert [(str(a.prefix), a.ra_mode) for a in port.adverts] == [(subnet.cidr, "slaac")]
    assert ipaddress.ip_interface(f"{subnet.gateway}/64") in port.addresses
    own = hostspecs.router_external_ipv6(router, ext6)
    assert spec.gateway.address6 == own and str(spec.gateway.gateway6) == ext6.gateway
    upstream = hostspecs.upstream_spec(external.__class__.objects.get(pk=external.pk))
    assert upstream.address6 == ipaddress.ip_interface(f"{ext6.gateway}/64")
    assert upstream.routes6 == ((subnet.ip_network, own.ip),)


def test_the_api_creates_a_subnet_from_the_pool(tenant_factory, member_factory, outbox):
    tenant = tenant_factory()
    network = services.network_create(tenant=tenant, name="n", subnet={"cidr": "10.0.1.0/24"})
    client = APIClient()
    client.force_authenticate(member_factory(tenant))
    made = client.post("/api/v1/subnets/", {"network": network.pk, "from_pool": True, **V6}, format="json")
    assert made.status_code == 201, made.json()
    assert ipaddress.ip_network(made.json()["cidr"]).subnet_of(ipaddress.ip_network(subnet_pools.pool().prefix))
    both = client.post("/api/v1/subnets/", {"network": network.pk, "from_pool": True, "cidr": "fd11::/64", **V6},
                       format="json")
    assert both.status_code == 400 and "not both" in str(both.json())
    neither = client.post("/api/v1/subnets/", {"network": network.pk, **V6}, format="json")
    assert neither.status_code == 400


def test_the_form_creates_a_subnet_from_the_pool(tenant_factory, user_factory, outbox):
    tenant = tenant_factory()
    network = services.network_create(tenant=tenant, name="n", subnet={"cidr": "10.0.1.0/24"})
    form = SubnetCreateForm({"from_pool": "on", "lease_seconds": 3600, "enable_dhcp": "on", **V6})
    assert form.is_valid(), form.errors
    subnet = form.save(network=network, actor=user_factory())
    assert subnet is not None and subnet.ip_version == 6
    form = SubnetCreateForm({"lease_seconds": 3600, "enable_dhcp": "on", **V6})
    assert form.is_valid() and form.save(network=network, actor=user_factory()) is None
    assert "not both" in str(form.errors["cidr"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.fixed_dictionaries({}, optional={
    "from_pool": st.one_of(st.booleans(), st.text(max_size=5), st.integers(), st.none()),
    "cidr": st.one_of(st.text(max_size=50), st.sampled_from(["fd11::/64", "fd00::/64", "2001:db8::/64", ""]),
                      st.integers()),
    "ipv6_ra_mode": st.sampled_from(["slaac", "dhcpv6-stateful", "", "x"]),
    "ipv6_address_mode": st.sampled_from(["slaac", "dhcpv6-stateful", "", "x"]),
}))
def test_fuzzed_pool_payloads_never_answer_with_a_server_error(payload, tenant_factory, member_factory, outbox):
    tenant = tenant_factory()
    network = services.network_create(tenant=tenant, name="n", subnet={"cidr": "10.0.1.0/24"})
    client = APIClient()
    client.force_authenticate(member_factory(tenant))
    r = client.post("/api/v1/subnets/", {"network": network.pk, **payload}, format="json")
    assert r.status_code in (201, 400), (payload, r.status_code, r.content[:300])
