"""``network_create_many``: every network with its subnet, DHCP servers and job in one transaction, or none."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tenants import services
from tenants.models import DhcpServer, Network, Subnet

pytestmark = pytest.mark.django_db


def test_many_networks_are_created_together_each_with_its_job(tenant_factory, outbox,
                                                              django_capture_on_commit_callbacks):
    tenant = tenant_factory()
    items = [{"name": f"n{i}", "subnet": {"cidr": f"10.{i}.0.0/24"}} for i in range(3)] + [{"name": "bare"}]
    with django_capture_on_commit_callbacks(execute=True):
        made = services.network_create_many(tenant=tenant, networks=items)
    assert [n.name for n in made] == ["n0", "n1", "n2", "bare"]
    assert [n.subnets.count() for n in made] == [1, 1, 1, 0]
    assert all(n.vni == n.pk for n in made)
    assert DhcpServer.objects.filter(network__in=made, rank=0).count() == 4
    assert outbox["jobs"] == [("tenants.jobs.realise_network_batch", ([n.pk for n in made],))]


def test_one_bad_item_refuses_the_whole_call_and_names_it(tenant_factory, outbox,
                                                         django_capture_on_commit_callbacks):
    tenant = tenant_factory()
    items = [{"name": "a", "subnet": {"cidr": "10.0.0.0/24"}}, {"name": "b", "subnet": {"cidr": "10.0.0.5/24"}}]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as caught:
        services.network_create_many(tenant=tenant, networks=items)
    assert "Network 2 of 2 ('b')" in caught.value.messages[0]
    assert "10.0.0.0/24" in caught.value.messages[0]  # the validator's suggestion survives
    assert not Network.objects.filter(tenant=tenant).exists() and not Subnet.objects.exists()
    assert outbox["jobs"] == []


def test_the_quota_counts_every_network_asked_for(tenant_factory, outbox):
    tenant = tenant_factory(quota_networks=3)
    services.network_create(tenant=tenant, name="first")
    with pytest.raises(ValidationError, match=r"at most 3 networks \(1 in use, 3 more asked for\)"):
        services.network_create_many(tenant=tenant, networks=[{"name": f"n{i}"} for i in range(3)])
    assert services.network_create_many(tenant=tenant, networks=[{"name": "n0"}, {"name": "n1"}])
    assert Network.objects.filter(tenant=tenant).count() == 3
