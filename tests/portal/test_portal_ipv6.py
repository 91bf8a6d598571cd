"""IPv6 through the portal's forms: the mode fields, the matrix's message on the form, both families shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(member_factory, tenant_factory):
    return member_factory(tenant_factory(name="Acme", slug="acme"), role="admin", username="acme-admin")


def test_add_ipv6_subnet_and_see_both_families(client, admin, network_factory):
    network = network_factory(tenant=admin.tenants.get(), name="lab", cidr="192.168.1.0/24")
    client.force_login(admin)
    url = reverse("portal:subnet-create", args=[network.pk])
    form = {"cidr": "2001:db8:80::/64", "gateway": "", "lease_seconds": 3600, "enable_dhcp": "on",
            "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateless"}
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert any("slaac/slaac, dhcpv6-stateless/dhcpv6-stateless" in e
               for e in refused.context["form"].errors["ipv6_address_mode"])
    assert client.post(url, {**form, "ipv6_ra_mode": "dhcpv6-stateless"}).status_code == 302
    subnet = network.subnets.get(ip_version=6)
    assert (subnet.ipv6_ra_mode, subnet.ipv6_address_mode, subnet.gateway) == (
        "dhcpv6-stateless", "dhcpv6-stateless", "2001:db8:80::1")
    inst = services.instance_create(network=network, hostname="vm1")
    html = client.get(network.get_absolute_url()).content.decode()
    assert "RA dhcpv6-stateless · address dhcpv6-stateless" in html and inst.ipv6_address in html
    detail = client.get(reverse("portal:instance-detail", args=[inst.pk])).content.decode()
    assert inst.ip_address in detail and inst.ipv6_address in detail
