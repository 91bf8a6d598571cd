"""POST a list to /api/v1/networks/ or /api/v1/instances/: every object or none, in one tenant (networks) or one
network (instances) — NetBox's bulk create convention."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants import services
from tenants.models import AuditEntry, Instance, Network

User = get_user_model()

pytestmark = pytest.mark.django_db
URL = "/api/v1/networks/"


@pytest.fixture
def api(tenant_factory, member_factory, monkeypatch):
    jobs: list[tuple] = []
    monkeypatch.setattr("tenants.queue.enqueue_now", lambda func, *args, node=None: jobs.append((func, args)) or True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now",
                        lambda func, calls, node=None: jobs.extend((func, a) for a in calls) or True)
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: None)
    tenant = tenant_factory(slug="bulk")
    client = APIClient()
    client.force_authenticate(member_factory(tenant, username="bulk-user"))
    return client, tenant, jobs


def test_a_list_creates_every_network_with_its_subnet(api, django_capture_on_commit_callbacks):
    client, tenant, jobs = api
    body = [{"name": f"n{i}", "subnet": {"cidr": f"10.{i}.0.0/24"}} for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert [(n["name"], n["subnets"][0]["cidr"]) for n in response.json()] == [
        ("n0", "10.0.0.0/24"), ("n1", "10.1.0.0/24"), ("n2", "10.2.0.0/24")]
    made = sorted(Network.objects.filter(tenant=tenant).values_list("pk", flat=True))
    assert jobs == [("tenants.jobs.realise_network_batch", (made,))]  # one job for the batch


def test_one_bad_item_creates_nothing(api):
    client, tenant, _ = api
    bad_field = client.post(URL, [{"name": "a"}, {"subnet": {"cidr": "10.0.0.0/24"}}], format="json")
    assert bad_field.status_code == 400 and list(bad_field.json()) == ["1"] and "name" in bad_field.json()["1"]
    bad_cidr = client.post(URL, [{"name": "a"}, {"name": "b", "subnet": {"cidr": "10.0.0.5/24"}}], format="json")
    assert bad_cidr.status_code == 400
    assert "Network 2 of 2 ('b')" in bad_cidr.json()["non_field_errors"][0]
    assert client.post(URL, [{"name": "a"}, {"name": "a"}], format="json").status_code == 400  # name taken
    assert not Network.objects.filter(tenant=tenant).exists()


def test_a_list_goes_to_one_tenant_and_is_bounded(api, tenant_factory):
    client, tenant, _ = api
    other = tenant_factory(slug="bulk-other")
    services.membership_set(tenant=other, user=User.objects.get(username="bulk-user"), role="member")
    mixed = client.post(URL, [{"name": "a", "tenant": "bulk"}, {"name": "b", "tenant": "bulk-other"}], format="json")
    assert mixed.status_code == 400 and "one tenant" in mixed.json()["tenant"][0]
    assert client.post(URL, [], format="json").status_code == 400
    assert not Network.objects.exists()


INSTANCES = "/api/v1/instances/"


def test_a_list_creates_every_instance_with_one_job(api, network_factory, django_capture_on_commit_callbacks):
    client, tenant, jobs = api
    network = network_factory(tenant=tenant, cidr="10.5.0.0/24")
    jobs.clear()
    body = [{"network": network.pk, "hostname": f"vm{i}"} for i in range(3)] + [
        {"network": network.pk, "hostname": "pinned", "ip_address": "10.5.0.200"}]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(INSTANCES, body, format="json")
    assert response.status_code == 201, response.content
    got = response.json()
    assert [(i["hostname"], i["ip_address"]) for i in got] == [
        ("vm0", "10.5.0.3"), ("vm1", "10.5.0.4"), ("vm2", "10.5.0.5"), ("pinned", "10.5.0.200")]
    assert len({i["mac_address"] for i in got}) == 4
    assert jobs == [("tenants.jobs.realise_instance_batch", ([i["id"] for i in got],))]
    assert AuditEntry.objects.filter(action="instance.create", tenant=tenant).count() == 4


def test_an_instance_list_with_one_bad_item_creates_nothing_and_names_it(api, network_factory):
    client, tenant, _ = api
    network = network_factory(tenant=tenant, cidr="10.5.0.0/24")
    taken = client.post(INSTANCES, [{"network": network.pk, "hostname": "a"},
                                    {"network": network.pk, "hostname": "a"}], format="json")
    assert taken.status_code == 400 and "Instance 2 of 2 ('a')" in taken.json()["non_field_errors"][0]
    outside = client.post(INSTANCES, [{"network": network.pk, "hostname": "a"},
                                      {"network": network.pk, "hostname": "b", "ip_address": "10.9.0.1"}],
                          format="json")
    assert outside.status_code == 400 and "Instance 2 of 2 ('b')" in outside.json()["non_field_errors"][0]
    bad_name = client.post(INSTANCES, [{"network": network.pk, "hostname": "a"},
                                       {"network": network.pk, "hostname": "-bad-"}], format="json")
    assert bad_name.status_code == 400
    assert not Instance.objects.exists()


def test_an_instance_list_goes_to_one_network_and_is_bounded(api, network_factory):
    client, tenant, _ = api
    one, two = (network_factory(tenant=tenant, cidr=c) for c in ("10.5.0.0/24", "10.6.0.0/24"))
    mixed = client.post(INSTANCES, [{"network": one.pk, "hostname": "a"}, {"network": two.pk, "hostname": "b"}],
                        format="json")
    assert mixed.status_code == 400 and "one network" in mixed.json()["network"][0]
    assert client.post(INSTANCES, [], format="json").status_code == 400
    assert not Instance.objects.exists()
