"""``network_delete_many``: every network marked ``deleting`` with its teardown job, in one transaction, or none."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tenants import routers, services
from tenants.choices import ObjectStatus
from tenants.models import AuditEntry, Network

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(monkeypatch):
    sent: list[tuple[str, tuple]] = []
    monkeypatch.setattr("tenants.queue.enqueue_now", lambda func, *args, node=None: sent.append((func, args)) or True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now",
                        lambda func, calls, node=None: sent.extend((func, args) for args in calls) or True)
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: None)
    return sent


def test_many_networks_are_marked_together_each_with_its_job(tenant_factory, network_factory, jobs,
                                                             django_capture_on_commit_callbacks):
    tenant = tenant_factory()
    nets = [network_factory(tenant=tenant, cidr=f"10.{i}.0.0/24") for i in range(3)]
    services.instance_create(network=nets[0], hostname="vm")
    jobs.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.network_delete_many(networks=nets)
    assert set(Network.objects.values_list("status", flat=True)) == {ObjectStatus.DELETING}
    assert nets[0].instances.get().status == ObjectStatus.DELETING
    # One teardown job for the batch, not one per network; one audit row each.
    assert jobs == [("tenants.jobs.destroy_network_batch", ([n.pk for n in nets],))]
    assert sorted(AuditEntry.objects.filter(action="network.delete").values_list("object_id", "tenant_id")) == sorted(
        (str(n.pk), tenant.pk) for n in nets)


def test_a_bulk_delete_larger_than_a_batch_is_split_into_batch_jobs(tenant_factory, network_factory, jobs,
                                                                    monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr("tenants.queue.BATCH", 2)
    nets = [network_factory(tenant=tenant_factory(), cidr=f"10.{i}.0.0/24") for i in range(5)]
    jobs.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.network_delete_many(networks=nets)
    ids = [n.pk for n in nets]
    assert jobs == [("tenants.jobs.destroy_network_batch", (ids[i:i + 2],)) for i in (0, 2, 4)]


def test_an_external_network_in_use_refuses_the_whole_call(tenant_factory, network_factory, jobs,
                                                           django_capture_on_commit_callbacks):
    tenant = tenant_factory()
    plain = network_factory(tenant=tenant, cidr="10.1.0.0/24")
    external = routers.external_network_create(tenant=tenant_factory(), name="public",
                                               subnet={"cidr": "203.0.113.0/24", "gateway": "auto"})
    routers.floating_ip_allocate(tenant=tenant, external_network=external)
    jobs.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError, match="still holds"):
        services.network_delete_many(networks=[plain, external])
    assert Network.objects.get(pk=plain.pk).status != ObjectStatus.DELETING
    assert jobs == []
