"""Router and floating-IP pages (issue 14): members see, the tenant's admins act, the services' refusals come back
next to the field with the rest of the form kept."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants import routers, services
from tenants.models import FloatingIP, Router, RouterInterface

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(member_factory, tenant):
    return member_factory(tenant, role="member", username="acme-member")


@pytest.fixture
def external(tenant_factory):
    operators = tenant_factory(name="Operators", slug="operators")
    return routers.external_network_create(tenant=operators, name="public",
                                           subnet={"cidr": "203.0.113.0/24", "enable_dhcp": False})


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


def test_admin_creates_a_router_with_a_gateway_and_sees_it_listed(as_admin, tenant, external):
    response = as_admin.post(reverse("portal:router-create"), {"name": "edge", "external_network": external.pk})
    router = Router.objects.get(tenant=tenant, name="edge")
    assert response.status_code == 302 and response["Location"] == reverse("portal:router-detail", args=[router.pk])
    assert router.external_ip and router.external_ip.startswith("203.0.113.")
    listing = as_admin.get(reverse("portal:router-list")).content.decode()
    assert "edge" in listing and router.external_ip in listing
    detail = as_admin.get(reverse("portal:router-detail", args=[router.pk])).content.decode()
    assert router.external_ip in detail and "public" in detail


def test_duplicate_router_name_is_shown_next_to_the_name_and_the_choice_is_kept(as_admin, tenant, external):
    routers.router_create(tenant=tenant, name="edge")
    response = as_admin.post(reverse("portal:router-create"), {"name": "edge", "external_network": external.pk})
    form = response.context["form"]
    assert response.status_code == 200
    assert form.errors["name"] == ["This tenant already has a router named 'edge'."]
    assert form["external_network"].value() == str(external.pk)


def test_attach_and_detach_a_subnet(as_admin, tenant, network):
    router = routers.router_create(tenant=tenant, name="edge")
    subnet = network.subnets.get()
    response = as_admin.post(reverse("portal:router-interface-add", args=[router.pk]), {"subnet": subnet.pk})
    assert response.status_code == 302
    assert RouterInterface.objects.filter(router=router, subnet=subnet).exists()
    page = as_admin.get(reverse("portal:router-detail", args=[router.pk])).content.decode()
    assert "192.168.1.0/24" in page and reverse("portal:network-detail", args=[network.pk]) in page
    as_admin.post(reverse("portal:router-interface-remove", args=[router.pk, subnet.pk]))
    assert not RouterInterface.objects.filter(router=router).exists()


def test_a_subnet_without_gateway_is_refused_next_to_the_subnet_field(as_admin, tenant, network_factory):
    bare = network_factory(tenant=tenant, name="bare", cidr="10.9.0.0/24", gateway=None)
    router = routers.router_create(tenant=tenant, name="edge")
    response = as_admin.post(reverse("portal:router-interface-add", args=[router.pk]),
                             {"subnet": bare.subnets.get().pk})
    assert response.status_code == 200
    errors = response.context["interface_form"].errors["subnet"]
    assert "has no gateway address" in errors[0]
    assert errors[0] in response.content.decode()


def test_set_and_clear_the_gateway(as_admin, tenant, external):
    router = routers.router_create(tenant=tenant, name="edge")
    as_admin.post(reverse("portal:router-gateway-set", args=[router.pk]), {"external_network": external.pk})
    router.refresh_from_db()
    assert router.external_network == external and router.external_ip
    as_admin.post(reverse("portal:router-gateway-clear", args=[router.pk]))
    router.refresh_from_db()
    assert router.external_network is None and router.external_ip is None


def test_floating_ip_allocate_associate_move_disassociate_release(as_admin, tenant, network, external):
    router = routers.router_create(tenant=tenant, name="edge", external_network=external)
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    vm1 = services.instance_create(network=network, hostname="vm1")
    vm2 = services.instance_create(network=network, hostname="vm2")

    response = as_admin.post(reverse("portal:floating-ip-list"), {"external_network": external.pk})
    fip = FloatingIP.objects.get(tenant=tenant)
    assert response["Location"] == reverse("portal:floating-ip-detail", args=[fip.pk])
    detail = reverse("portal:floating-ip-detail", args=[fip.pk])
    as_admin.post(detail, {"instance": vm1.pk})
    fip.refresh_from_db()
    assert fip.instance == vm1
    page = as_admin.get(detail).content.decode()
    assert "vm1" in page and reverse("portal:router-detail", args=[router.pk]) in page
    as_admin.post(detail, {"instance": vm2.pk})
    fip.refresh_from_db()
    assert fip.instance == vm2
    as_admin.post(reverse("portal:floating-ip-disassociate", args=[fip.pk]))
    fip.refresh_from_db()
    assert fip.instance is None
    as_admin.post(reverse("portal:floating-ip-release", args=[fip.pk]))
    assert not FloatingIP.objects.filter(pk=fip.pk).exists()


def test_associating_an_instance_no_router_reaches_is_refused_on_the_instance_field(as_admin, tenant, network,
                                                                                     external):
    vm = services.instance_create(network=network, hostname="vm1")
    fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
    response = as_admin.post(reverse("portal:floating-ip-detail", args=[fip.pk]), {"instance": vm.pk})
    assert response.status_code == 200
    assert "no router" in response.context["form"].errors["instance"][0]
    assert response.context["form"]["instance"].value() == str(vm.pk)


def test_a_member_sees_but_cannot_act(client, member, tenant, network, external):
    router = routers.router_create(tenant=tenant, name="edge", external_network=external)
    fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
    client.force_login(member)
    assert client.get(reverse("portal:router-detail", args=[router.pk])).status_code == 200
    assert client.get(reverse("portal:floating-ip-detail", args=[fip.pk])).status_code == 200
    posts = [reverse("portal:router-create"), reverse("portal:router-delete", args=[router.pk]),
             reverse("portal:router-interface-add", args=[router.pk]),
             reverse("portal:router-gateway-set", args=[router.pk]),
             reverse("portal:router-gateway-clear", args=[router.pk]),
             reverse("portal:floating-ip-list"), reverse("portal:floating-ip-detail", args=[fip.pk]),
             reverse("portal:floating-ip-disassociate", args=[fip.pk]),
             reverse("portal:floating-ip-release", args=[fip.pk])]
    for url in posts:
        assert client.post(url, {"name": "x", "external_network": external.pk}).status_code == 403, url
    router.refresh_from_db()
    assert router.external_network == external and FloatingIP.objects.filter(pk=fip.pk).exists()
    assert Router.objects.filter(tenant=tenant).count() == 1


def test_tenant_pages_link_to_routers(as_admin, network):
    page = as_admin.get(reverse("portal:network-list")).content.decode()
    assert reverse("portal:router-list") in page


def test_network_and_instance_pages_show_the_router_its_external_address_and_the_floating_ip(
        as_admin, tenant, network, external):
    router = routers.router_create(tenant=tenant, name="edge", external_network=external)
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    vm = services.instance_create(network=network, hostname="vm1")
    fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
    routers.floating_ip_associate(floating_ip=fip, instance=vm)
    router.refresh_from_db()
    router_url = reverse("portal:router-detail", args=[router.pk])
    network_page = as_admin.get(reverse("portal:network-detail", args=[network.pk])).content.decode()
    assert router_url in network_page and router.external_ip in network_page
    instance_page = as_admin.get(reverse("portal:instance-detail", args=[vm.pk])).content.decode()
    assert router_url in instance_page and fip.address in instance_page


def test_a_failed_router_job_shows_its_reason_on_router_and_network_pages(as_admin, tenant, network):
    router = routers.router_create(tenant=tenant, name="edge")
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    Router.objects.filter(pk=router.pk).update(status="error", status_reason="nft: table netdash busy")
    for url in (reverse("portal:router-detail", args=[router.pk]), reverse("portal:router-list"),
                reverse("portal:network-detail", args=[network.pk])):
        assert "nft: table netdash busy" in as_admin.get(url).content.decode(), url
