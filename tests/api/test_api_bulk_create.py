"""POST a list to /api/v1/networks/: every network or none, in one tenant (NetBox's bulk create convention)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Network

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
    assert sorted(a[0] for f, a in jobs) == sorted(Network.objects.filter(tenant=tenant).values_list("pk", flat=True))


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
