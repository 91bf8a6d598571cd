"""The guided "Overlapping IPs" lab: one click builds two tenants on the same CIDR, one click tears it down."""

from __future__ import annotations

import pytest
from django.urls import reverse

from teach import selectors
from tenants import services
from tenants.choices import ObjectStatus, Role
from tenants.host import netns
from tenants.hostspecs import names
from tenants.models import Instance, Network, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.host
def test_lab_build_walkthrough_and_teardown(client, host_clean, agent_queue, user_factory):
    admin = user_factory(is_superuser=True)
    client.force_login(admin)
    assert client.get(reverse("teach:lab")).status_code == 200
    assert client.post(reverse("teach:lab-build")).status_code == 302
    client.post(reverse("teach:lab-build"))  # idempotent: a second click creates nothing more
    assert Network.objects.filter(name=selectors.LAB_NETWORK).count() == 2

    def active() -> bool:
        return Instance.objects.filter(network__name=selectors.LAB_NETWORK, status=ObjectStatus.ACTIVE).count() == 2

    assert settle(active, timeout=20), list(Instance.objects.values_list("hostname", "status", "status_reason"))
    a, b = Instance.objects.filter(network__name=selectors.LAB_NETWORK).order_by("network__tenant__slug")
    assert a.ip_address == b.ip_address and a.mac_address != b.mac_address
    assert {a.network.tenant.slug, b.network.tenant.slug} == {"lab-a", "lab-b"}
    for i in (a, b):
        assert netns.exists(names().inst_ns(i.kernel_id))
    page = client.get(reverse("teach:lab")).content.decode()
    assert f"?a=inst-{a.pk}&amp;b=inst-{b.pk}" in page
    assert reverse("teach:instance-commands", args=[a.pk]) in page
    assert 'class="lab-steps"' in page
    assert client.post(reverse("teach:lab-teardown")).status_code == 302
    assert settle(lambda: not Network.objects.filter(name=selectors.LAB_NETWORK).exists(), timeout=20)
    for i in (a, b):
        assert not netns.exists(names().inst_ns(i.kernel_id))


def test_lab_needs_superuser_or_two_lab_tenants(client, user_factory, agent_queue):
    user = user_factory()
    client.force_login(user)
    client.post(reverse("teach:lab-build"))
    assert not Network.objects.exists() and not Tenant.objects.filter(slug__startswith="lab-").exists()
    for slug in ("lab-x", "lab-y"):
        tenant = services.tenant_create(name=slug, slug=slug)
        services.membership_set(tenant=tenant, user=user, role=Role.MEMBER)
    client.post(reverse("teach:lab-build"))
    assert sorted(Network.objects.values_list("tenant__slug", flat=True)) == ["lab-x", "lab-y"]
    assert Instance.objects.count() == 2
    # Another user sees none of it.
    other = user_factory()
    client.force_login(other)
    assert "lab-x" not in client.get(reverse("teach:lab")).content.decode()
