"""Shared fixtures for the whole suite: keep this file small and generic; layer-specific fixtures live next to
their tests (e.g. ``tests/foundation/conftest.py``)."""

import itertools

import pytest

_counter = itertools.count(1)


@pytest.fixture
def user_factory(django_user_model):
    """Create users: ``user_factory()``, ``user_factory(username="bob", is_superuser=True)``."""

    def make(username=None, password="pw-not-used-elsewhere-1", **extra):
        username = username or f"user{next(_counter)}"
        if extra.pop("is_superuser", False):
            return django_user_model.objects.create_superuser(username=username, password=password, **extra)
        return django_user_model.objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def tenant_factory():
    """Create tenants through the service: ``tenant_factory()``, ``tenant_factory(slug="acme", quota_networks=1)``."""
    from tenants import services

    def make(name=None, slug=None, **quotas):
        n = next(_counter)
        return services.tenant_create(name=name or f"Tenant {n}", slug=slug or f"tenant-{n}", **quotas)

    return make


@pytest.fixture
def network_factory(tenant_factory):
    """Create a network (optionally with a first subnet) through the service."""
    from tenants import services

    def make(tenant=None, name=None, cidr=None, **subnet):
        tenant = tenant or tenant_factory()
        first = {"cidr": cidr, **subnet} if cidr else None
        return services.network_create(tenant=tenant, name=name or f"net-{next(_counter)}", subnet=first)

    return make
