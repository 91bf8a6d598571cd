"""A batch job reads its networks in a fixed number of queries, whatever their number (issue 16).

``convergence.load_networks`` prefetches everything ``network_spec`` and ``instance_spec`` read; a query per
network inside a batch (a relation read without its prefetch) makes the agent's cost per network grow with the
batch. Each test builds 3 dual-stack networks (IPv6 routed, an instance each), counts the queries of one batch's
specs, builds up to 30 and counts again. No host is touched.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import convergence, routers, services, subnet_pools
from tenants.hostspecs import instance_spec, network_spec
from tenants.models import Network

pytestmark = pytest.mark.django_db

SIZES = (3, 30)


@pytest.fixture
def outbox(monkeypatch):
    """No Redis here: jobs and events are dropped (what is counted is the batch's database queries)."""
    monkeypatch.setattr("tenants.queue.enqueue_now", lambda func, *args, node=None: True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now", lambda func, calls, node=None: True)
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: None)


def _grow(tenant, router, n: int) -> None:
    for i in range(Network.objects.filter(tenant=tenant).count(), n):
        network = services.network_create(tenant=tenant, name=f"n{i}", subnet={"cidr": f"10.{i}.0.0/24"})
        v6 = subnet_pools.subnet_create_from_pool(network=network, ipv6_ra_mode="dhcpv6-stateful",
                                                  ipv6_address_mode="dhcpv6-stateful")
        routers.router_interface_add(router=router, subnet=v6)
        services.instance_create(network=network, hostname=f"vm{i}")


def _batch_queries(tenant) -> tuple[int, int]:
    ids = list(Network.objects.filter(tenant=tenant).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as ctx:
        for network in convergence.load_networks(ids):
            spec = network_spec(network)
            assert any(s.ipv6_ra_mode is None and s.cidr.version == 6 for s in spec.subnets)  # routed: no RA
            for instance in network.instances.all():
                instance_spec(instance)
    return len(ids), len(ctx.captured_queries)


def test_a_batch_of_networks_costs_the_same_queries_whatever_its_size(tenant_factory, outbox):
    tenant = tenant_factory(slug="bq", quota_networks=100, quota_subnets=100, quota_instances=100, quota_routers=5)
    router = routers.router_create(tenant=tenant, name="r")
    counts = []
    for n in SIZES:
        _grow(tenant, router, n)
        counts.append(_batch_queries(tenant))
    assert [c[0] for c in counts] == list(SIZES)
    assert counts[0][1] == counts[1][1], f"queries per batch grew with its size: {counts}"
