"""The live snapshot is built in a fixed number of queries (issue 16 "Pages"): a query per network, instance or
router would make the 500-network page cost thousands of round trips. Counted with a small and a larger tenant
(the bench's bulk rows plus a router with an interface and a floating IP); both counts must be equal.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.topology_rows import seed
from live.snapshot import build_snapshot, resolve_view
from tenants import routers, selectors
from tenants.models import AllocationPool, Instance, Lease, Network, Subnet

# Plain (non-transactional) tests: nothing commits, so no job is enqueued and no event published.
pytestmark = pytest.mark.django_db


@pytest.fixture
def external(tenant_factory):
    operators = tenant_factory(slug="snap-ops", quota_networks=5)
    return routers.external_network_create(tenant=operators, name="public",
                                           subnet={"cidr": "203.0.113.0/24", "gateway": "auto"})


def _queries(tenant, user, external) -> tuple[int, dict]:
    router = routers.router_create(tenant=tenant, name=f"r-{tenant.slug}", external_network=external)
    for subnet in list(tenant.networks.order_by("id")[0].subnets.all()):
        routers.router_interface_add(router=router, subnet=subnet)
    fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
    routers.floating_ip_associate(floating_ip=fip, instance=tenant.networks.order_by("id")[0].instances.first())
    view = resolve_view(user, tenant_id=tenant.pk)
    with CaptureQueriesContext(connection) as ctx:
        snap = build_snapshot(user, view)
    return len(ctx.captured_queries), snap


@pytest.mark.parametrize("sizes", [((3, 6), (60, 240))])
def test_snapshot_query_count_does_not_grow_with_the_rows(sizes, external):
    counts = []
    for i, (n_networks, n_instances) in enumerate(sizes):
        tenant, user = seed(slug=f"snap{i}", n_networks=n_networks, n_instances=n_instances)
        n, snap = _queries(tenant, user, external)
        assert (len(snap["networks"]), len(snap["instances"])) == (n_networks, n_instances)
        assert len(snap["routers"]) == 1 and len(snap["floating_ips"]) == 1
        assert len(snap["leases"]) == n_instances // 2
        counts.append(n)
    assert counts[0] == counts[1], f"queries grew with the rows: {counts}"


def test_snapshot_rows_equal_the_event_dicts(external):
    """The snapshot reads its big lists with ``values_list``; each row must still be exactly the dict an event
    carries (``selectors.*_data``), or the page would draw a snapshot and a delta differently."""
    tenant, user = seed(slug="same", n_networks=3, n_instances=6)
    _queries(tenant, user, external)  # a router and a floating IP as well
    network = tenant.networks.order_by("id")[0]
    subnet = network.subnets.get()
    subnet.dns_nameservers = ["10.0.0.53"]
    subnet.save()
    AllocationPool.objects.create(subnet=subnet, start="10.0.0.251", end="10.0.0.252")
    snap = build_snapshot(user, resolve_view(user, tenant_id=tenant.pk))
    got = {(row["kind"], row["id"]): row for key in ("networks", "subnets", "instances", "leases")
           for row in snap[key]}
    want = [selectors.network_data(n) for n in Network.objects.filter(tenant=tenant)]
    want += [selectors.subnet_data(s) for s in Subnet.objects.filter(network__tenant=tenant)]
    want += [selectors.instance_data(i) for i in Instance.objects.filter(network__tenant=tenant)]
    want += [selectors.lease_data(lease) for lease in Lease.objects.filter(subnet__network__tenant=tenant)]
    assert len(got) == len(want) == 3 + 3 + 6 + 3
    for row in want:
        extra = {"network": ("dhcp_namespace", "url"), "instance": ("namespace", "url")}.get(row["kind"], ())
        assert {k: v for k, v in got[row["kind"], row["id"]].items() if k not in extra} == row
