"""IPv6 through the REST API: a dual-stack network, the mode matrix's message, both addresses shown."""

from __future__ import annotations

import ipaddress

import pytest

from tenants import validators

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(bearer_client, member_factory, tenant_factory):
    return bearer_client(member_factory(tenant_factory(slug="acme"), username="alice"))


def test_dual_stack_network_and_instance(api):
    net = api.post("/api/v1/networks/", {"name": "ds", "subnet": {"cidr": "192.168.1.0/24"}}, format="json").json()
    bad = api.post("/api/v1/subnets/", {"network": net["id"], "cidr": "2001:db8:90::/64",
                                        "ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "slaac"},
                   format="json")
    assert bad.status_code == 400
    assert "valid pairs are slaac/slaac" in bad.json()["ipv6_address_mode"][0]
    nested = api.post("/api/v1/networks/", {"name": "v6", "subnet": {"cidr": "2001:db8:90::/64",
                                                                      "ipv6_address_mode": "dhcpv6"}}, format="json")
    assert any("'dhcpv6' is not an IPv6 address mode; use one of slaac, dhcpv6-stateless, dhcpv6-stateful" in m
               for m in nested.json()["subnet"]["ipv6_address_mode"]), nested.json()
    made = api.post("/api/v1/subnets/", {"network": net["id"], "cidr": "2001:db8:90::/64", "ipv6_ra_mode": "slaac",
                                         "ipv6_address_mode": "slaac", "dns_nameservers": ["2001:db8:90::53"]},
                    format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["ip_version"], body["ipv6_ra_mode"], body["ipv6_address_mode"], body["gateway"]) == (
        6, "slaac", "slaac", "2001:db8:90::1")
    inst = api.post("/api/v1/instances/", {"network": net["id"], "hostname": "vm1"}, format="json").json()
    assert inst["ip_address"] == "192.168.1.3" and inst["ipv6_subnet"] == body["id"]
    expected = validators.eui64_address(ipaddress.ip_network("2001:db8:90::/64"), inst["mac_address"])
    assert inst["ipv6_address"] == str(expected)
    assert api.get(f"/api/v1/instances/{inst['id']}/").json()["ipv6_address"] == str(expected)
