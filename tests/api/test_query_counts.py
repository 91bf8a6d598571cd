"""List endpoints and the network list page answer in a number of queries that does not grow with the rows shown
(issue 16): a query per row (a serializer field reading a relation, a count per network) makes a page of 50 cost
50 more round trips. Each test builds 3 rows, counts the queries of one request, builds up to 30, counts again.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenants import routers, services
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

SIZES = (3, 30)
QUOTAS = ("quota_networks", "quota_subnets", "quota_instances", "quota_routers", "quota_floating_ips")


@pytest.fixture
def outbox(monkeypatch):
    """No Redis here: jobs and events are dropped (what is counted is the request's database queries)."""
    monkeypatch.setattr("tenants.queue.enqueue_now", lambda func, *args, node=None: True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now", lambda func, calls, node=None: True)
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: None)


@pytest.fixture
def world(tenant_factory, member_factory, outbox):
    """One tenant with a member (an API client and a logged-in browser client) and an external network."""
    tenant = tenant_factory(slug="qc", **dict.fromkeys(QUOTAS, 100))
    user = member_factory(tenant, username="qc-user")
    api = APIClient()
    api.force_authenticate(user)
    operators = tenant_factory(slug="qc-ops")
    external = routers.external_network_create(tenant=operators, name="public",
                                               subnet={"cidr": "203.0.113.0/24", "gateway": "auto"})
    return {"tenant": tenant, "user": user, "api": api, "external": external}


def _network(tenant: Tenant, i: int):
    network = services.network_create(tenant=tenant, name=f"n{i}", subnet={"cidr": f"10.{i}.0.0/24"})
    services.subnet_create(network=network, cidr=f"10.{i}.1.0/24")
    return network


def _grow_networks(world, n: int) -> None:
    """Networks with two subnets and an instance each (what every count and nested list reads)."""
    tenant = world["tenant"]
    for i in range(tenant.networks.count(), n):
        services.instance_create(network=_network(tenant, i), hostname=f"vm{i}")


def _grow_routers(world, n: int) -> None:
    """Routers with a gateway and two interfaces, and a floating IP associated with an instance per router."""
    tenant, external = world["tenant"], world["external"]
    for i in range(tenant.routers.count(), n):
        network = _network(tenant, i)
        instance = services.instance_create(network=network, hostname=f"vm{i}")
        router = routers.router_create(tenant=tenant, name=f"r{i}", external_network=external)
        for subnet in network.subnets.all():
            routers.router_interface_add(router=router, subnet=subnet)
        fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
        routers.floating_ip_associate(floating_ip=fip, instance=instance)


def _queries(request: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = request()
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    return len(ctx.captured_queries)


def _counts(world, grow: Callable[[dict, int], None], request: Callable[[], object], rows: Callable[[], int]):
    counts = []
    for n in SIZES:
        grow(world, n)
        assert rows() >= n  # the rows are really on the page being counted
        counts.append(_queries(request))
    return counts


def _api_rows(world, url: str) -> Callable[[], int]:
    return lambda: len(world["api"].get(url).json()["results"])


@pytest.mark.parametrize("url", ["/api/v1/networks/", "/api/v1/subnets/", "/api/v1/instances/"])
def test_api_network_lists_do_not_grow_with_the_rows(world, url):
    counts = _counts(world, _grow_networks, lambda: world["api"].get(url), _api_rows(world, url))
    assert counts[0] == counts[1], f"{url}: {counts[0]} queries for {SIZES[0]} rows, {counts[1]} for {SIZES[1]}"


@pytest.mark.parametrize("url", ["/api/v1/routers/", "/api/v1/floating-ips/"])
def test_api_router_lists_do_not_grow_with_the_rows(world, url):
    counts = _counts(world, _grow_routers, lambda: world["api"].get(url), _api_rows(world, url))
    assert counts[0] == counts[1], f"{url}: {counts[0]} queries for {SIZES[0]} rows, {counts[1]} for {SIZES[1]}"


def test_network_list_page_does_not_grow_with_the_rows(world, client):
    client.force_login(world["user"])

    def rows() -> int:
        return client.get("/").content.decode().count('data-field="name"')

    counts = _counts(world, _grow_networks, lambda: client.get("/"), rows)
    assert counts[0] == counts[1], f"network list: {counts[0]} queries for 3 networks, {counts[1]} for 30"
