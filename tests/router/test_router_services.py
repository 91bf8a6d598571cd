"""Router, external network and floating IP services against a real database: validation that suggests the fix,
quotas, jobs enqueued only after commit, and allocation races on the external subnet's row lock."""

import ipaddress

import pytest
from django.core.exceptions import ValidationError

from tenants import routers, services
from tenants.choices import ObjectStatus
from tenants.models import FloatingIP, Network, Router, RouterInterface, Subnet
from tenants.testing import run_concurrently, split

pytestmark = pytest.mark.django_db


def messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@pytest.fixture
def routed(network_factory, external_factory, outbox):
    """A tenant network 192.168.1.0/24 with one instance, behind a router with a gateway to ``public``."""
    external = external_factory()
    network = network_factory(cidr="192.168.1.0/24")
    subnet = network.subnets.get()
    router = routers.router_create(tenant=network.tenant, name="r1", external_network=external)
    routers.router_interface_add(router=router, subnet=subnet)
    instance = services.instance_create(network=network, hostname="vm1")
    return {"external": external, "network": network, "subnet": subnet, "router": router, "instance": instance,
            "tenant": network.tenant}


def test_external_network_is_marked_and_gateway_takes_its_next_free_address(routed):
    external, router = routed["external"], Router.objects.get(pk=routed["router"].pk)
    assert external.external and Network.objects.get(pk=external.pk).external
    # .1 is the external subnet's gateway, .2 its DHCP address: the router takes the first pool address.
    assert router.external_network_id == external.pk and router.external_ip == "203.0.113.3"


def test_router_create_enqueues_after_commit_only(tenant_factory, outbox, django_capture_on_commit_callbacks):
    tenant = tenant_factory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        router = routers.router_create(tenant=tenant, name="r")
    assert outbox["jobs"] == []
    for callback in callbacks:
        callback()
    assert outbox["jobs"] == [("tenants.jobs.realise_router", (router.pk,))]
    assert router.node


def test_router_name_unique_per_tenant_and_quota(tenant_factory, outbox):
    tenant = tenant_factory(quota_routers=1)
    routers.router_create(tenant=tenant, name="r")
    with pytest.raises(ValidationError, match="Quota reached.*at most 1 routers"):
        routers.router_create(tenant=tenant, name="r2")
    services.tenant_update(tenant=tenant, quota_routers=3)
    with pytest.raises(ValidationError, match="already has a router named 'r'"):
        routers.router_create(tenant=tenant, name="r")


def test_gateway_to_a_network_that_is_not_external_is_refused(network_factory, outbox):
    ordinary = network_factory(cidr="10.9.0.0/24")
    with pytest.raises(ValidationError) as err:
        routers.router_create(tenant=ordinary.tenant, name="r", external_network=ordinary)
    assert "is not an external network" in messages(err.value) and "ask an administrator" in messages(err.value)
    assert not Router.objects.exists()  # the router went with the refused transaction


def test_attaching_a_subnet_without_gateway_says_how_to_fix_it(network_factory, outbox):
    network = network_factory(cidr="10.1.0.0/24", gateway=None)
    router = routers.router_create(tenant=network.tenant, name="r")
    with pytest.raises(ValidationError, match="has no gateway address.*set one on the subnet"):
        routers.router_interface_add(router=router, subnet=network.subnets.get())


def test_a_second_router_on_a_subnet_is_refused(routed):
    second = routers.router_create(tenant=routed["tenant"], name="r2")
    with pytest.raises(ValidationError, match="already attached to router 'r1'; detach it there first"):
        routers.router_interface_add(router=second, subnet=routed["subnet"])


def test_another_tenants_subnet_cannot_be_attached(routed, network_factory):
    foreign = network_factory(cidr="10.2.0.0/24").subnets.get()
    with pytest.raises(ValidationError, match="belongs to another tenant"):
        routers.router_interface_add(router=routed["router"], subnet=foreign)


def test_overlapping_subnets_on_one_router_are_refused(routed, network_factory):
    other = services.network_create(tenant=routed["tenant"], name="again", subnet={"cidr": "192.168.1.0/25"})
    with pytest.raises(ValidationError, match="overlaps 192.168.1.0/24, already on this router"):
        routers.router_interface_add(router=routed["router"], subnet=other.subnets.get())


def test_floating_ip_allocation_is_unique_and_skips_the_router_gateway(routed):
    a = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    b = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    assert (a.address, b.address) == ("203.0.113.4", "203.0.113.5")


def test_floating_ip_quota(routed):
    services.tenant_update(tenant=routed["tenant"], quota_floating_ips=1)
    routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    with pytest.raises(ValidationError, match="at most 1 floating_ips"):
        routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])


def test_associate_enqueues_the_router_and_derives_it(routed, outbox, django_capture_on_commit_callbacks):
    fip = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    with django_capture_on_commit_callbacks(execute=True):
        fip = routers.floating_ip_associate(floating_ip=fip, instance=routed["instance"])
    assert FloatingIP.objects.get(pk=fip.pk).router.pk == routed["router"].pk
    assert outbox["jobs"] == [("tenants.jobs.realise_router", (routed["router"].pk,))]


def test_associate_without_a_router_says_what_is_missing(routed, external_factory):
    lonely = services.network_create(tenant=routed["tenant"], name="lonely", subnet={"cidr": "10.5.0.0/24"})
    vm = services.instance_create(network=lonely, hostname="alone")
    fip = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    with pytest.raises(ValidationError, match="which no router is attached to; attach the subnet to a router"):
        routers.floating_ip_associate(floating_ip=fip, instance=vm)
    routers.router_clear_gateway(router=routed["router"])
    with pytest.raises(ValidationError, match="has no gateway to 'public'; set its gateway"):
        routers.floating_ip_associate(floating_ip=fip, instance=routed["instance"])


def test_associate_refuses_another_tenants_instance_and_a_second_floating_ip(routed, network_factory):
    fip = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    foreign = services.instance_create(network=network_factory(cidr="10.3.0.0/24"), hostname="x")
    with pytest.raises(ValidationError, match="belongs to another tenant"):
        routers.floating_ip_associate(floating_ip=fip, instance=foreign)
    routers.floating_ip_associate(floating_ip=fip, instance=routed["instance"])
    second = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    with pytest.raises(ValidationError, match=f"already has floating IP {fip.address}; disassociate it first"):
        routers.floating_ip_associate(floating_ip=second, instance=routed["instance"])


def test_gateway_and_interface_cannot_be_pulled_from_under_an_associated_floating_ip(routed):
    fip = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    routers.floating_ip_associate(floating_ip=fip, instance=routed["instance"])
    with pytest.raises(ValidationError, match=f"Floating IPs {fip.address} are associated through this router"):
        routers.router_clear_gateway(router=routed["router"])
    interface = RouterInterface.objects.get(subnet=routed["subnet"])
    with pytest.raises(ValidationError, match="disassociate them first"):
        routers.router_interface_remove(interface=interface)
    routers.floating_ip_disassociate(floating_ip=fip)
    routers.router_interface_remove(interface=interface)
    assert not RouterInterface.objects.exists()


def test_deleting_a_router_releases_its_floating_ips_cleanly(routed, outbox, django_capture_on_commit_callbacks):
    fip = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    routers.floating_ip_associate(floating_ip=fip, instance=routed["instance"])
    with django_capture_on_commit_callbacks(execute=True):
        routers.router_delete(router=routed["router"])
    fip.refresh_from_db()
    assert fip.instance is None  # still the tenant's, no longer translated by a router that is going away
    assert Router.objects.get(pk=routed["router"].pk).status == ObjectStatus.DELETING
    assert outbox["jobs"] == [("tenants.jobs.destroy_router", (routed["router"].pk,))]
    with pytest.raises(ValidationError, match="being deleted"):
        routers.router_interface_add(router=routed["router"], subnet=routed["subnet"])


def test_release_gives_the_address_back(routed):
    fip = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    routers.floating_ip_associate(floating_ip=fip, instance=routed["instance"])
    routers.floating_ip_release(floating_ip=fip)
    again = routers.floating_ip_allocate(tenant=routed["tenant"], external_network=routed["external"])
    assert again.address == fip.address


def test_subnets_and_external_networks_in_use_cannot_be_deleted(routed):
    services.instance_delete(instance=routed["instance"])
    routed["instance"].delete()  # as the agent does once the namespace is gone
    with pytest.raises(ValidationError, match="attached to router 'r1'; detach it first"):
        services.subnet_delete(subnet=routed["subnet"])
    with pytest.raises(ValidationError, match="Routers or floating IPs still hold addresses"):
        services.subnet_delete(subnet=Subnet.objects.get(network=routed["external"]))
    with pytest.raises(ValidationError, match="still holds router gateways"):
        services.network_delete(network=routed["external"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_floating_ip_allocations_get_distinct_addresses(tenant_factory, external_factory, outbox):
    """Tenants racing on one external subnet: its row lock (and the unique constraint) give each its own address."""
    external = external_factory(cidr="198.51.100.0/28")  # .3 – .14: 12 addresses for 16 requests
    tenants = [tenant_factory(quota_floating_ips=4) for _ in range(4)]

    def allocate(i):
        return routers.floating_ip_allocate(tenant=tenants[i % 4], external_network=external).address

    ok, errors = split(run_concurrently(16, allocate))
    assert len(ok) == 12 and len(set(ok)) == 12
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("198.51.100.0/28") for a in ok)
    assert len(errors) == 4 and all("no free addresses left" in messages(e) for e in errors)
