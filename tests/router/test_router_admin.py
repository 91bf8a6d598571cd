"""Routers and floating IPs in the Django admin: every write goes through ``tenants.routers`` (IPAM, quotas, audit,
jobs), and the services' messages reach the form."""

import pytest
from django.urls import reverse

from tenants import routers, services
from tenants.choices import ObjectStatus
from tenants.models import AuditEntry, FloatingIP, Router

pytestmark = pytest.mark.django_db


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def post_data(client, page_url, **fields):
    """Form fields plus the management form of every inline on the page, as the browser would send them."""
    page = client.get(page_url)
    assert page.status_code == 200
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{name}": value for name, value in management.initial.items()})
    data.update(fields)
    return data


def test_router_add_change_delete_through_the_services(admin_client, admin_user, network_factory, external_factory,
                                                       outbox):
    external = external_factory()
    network = network_factory(cidr="192.168.1.0/24")
    add = url(Router, "add")
    # Only external networks are offered as a gateway: a tenant network is not a valid choice.
    refused = admin_client.post(add, post_data(admin_client, add, tenant=network.tenant.pk, name="r",
                                               external_network=network.pk))
    assert refused.status_code == 200 and "external_network" in refused.context["adminform"].form.errors
    response = admin_client.post(add, post_data(admin_client, add, tenant=network.tenant.pk, name="r",
                                                external_network=external.pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    router = Router.objects.get(name="r")
    assert router.external_ip == "203.0.113.3" and router.node
    assert AuditEntry.objects.get(action="router.create").actor == admin_user
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    instance = services.instance_create(network=network, hostname="vm1")
    fip = routers.floating_ip_allocate(tenant=network.tenant, external_network=external)
    routers.floating_ip_associate(floating_ip=fip, instance=instance)
    # Clearing the gateway under an associated floating IP: the service's message on the form.
    change = url(Router, "change", router.pk)
    response = admin_client.post(change, post_data(admin_client, change, external_network=""))
    assert response.status_code == 200 and "disassociate them first" in str(response.context["adminform"].form.errors)
    response = admin_client.post(url(Router, "delete", router.pk), {"post": "yes"})
    assert response.status_code == 302
    assert Router.objects.get(pk=router.pk).status == ObjectStatus.DELETING
    assert FloatingIP.objects.get(pk=fip.pk).instance is None


def test_floating_ip_allocate_and_release_through_the_services(admin_client, tenant_factory, external_factory,
                                                                outbox):
    external = external_factory()
    tenant = tenant_factory(quota_floating_ips=1)
    add = url(FloatingIP, "add")
    response = admin_client.post(add, post_data(admin_client, add, tenant=tenant.pk, network=external.pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    fip = FloatingIP.objects.get(tenant=tenant)
    assert fip.address == "203.0.113.3"
    response = admin_client.post(add, post_data(admin_client, add, tenant=tenant.pk, network=external.pk))
    assert response.status_code == 200 and "Quota reached" in str(response.context["adminform"].form.errors)
    assert admin_client.post(url(FloatingIP, "delete", fip.pk), {"post": "yes"}).status_code == 302
    assert not FloatingIP.objects.exists()
    assert AuditEntry.objects.filter(action="floating_ip.release").exists()


def test_create_external_network_command(tenant_factory, outbox):
    from django.core.management import CommandError, call_command

    from tenants.models import Network

    tenant_factory(slug="ops")
    call_command("create_external_network", "ops", "public", "198.51.100.0/24", "--simulated-upstream")
    network = Network.objects.get(name="public")
    assert network.external and network.simulated_upstream and network.subnets.get().gateway == "198.51.100.1"
    with pytest.raises(CommandError, match="not a simulated outside range"):
        call_command("create_external_network", "ops", "home", "192.0.2.0/24")
