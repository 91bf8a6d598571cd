"""Fixtures the portal page tests share: the tenant *Acme*, its admin and its network ``lab`` 192.168.1.0/24."""

import pytest


@pytest.fixture
def tenant(tenant_factory):
    return tenant_factory(name="Acme", slug="acme")


@pytest.fixture
def admin(member_factory, tenant):
    return member_factory(tenant, role="admin", username="acme-admin")


@pytest.fixture
def network(network_factory, tenant):
    return network_factory(tenant=tenant, name="lab", cidr="192.168.1.0/24")
