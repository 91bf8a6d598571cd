"""Routers and floating IPs on the live websocket (issue 14): in the snapshot at a fixed number of queries (with
each network's DHCP servers and their nodes, issue 13), their events relayed to their own tenant only."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from live_helpers import communicator

from live.snapshot import build_snapshot, resolve_view
from tenants import nodes, routers, services
from tenants.models import Router

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def external(tenant_factory):
    operators = tenant_factory(name="Operators", slug="operators")
    return routers.external_network_create(tenant=operators, name="public",
                                           subnet={"cidr": "203.0.113.0/24", "enable_dhcp": False})


def add_routed_instance(tenant, network_factory, external, n: int) -> None:
    """One more network behind its own router, with an instance that holds a floating IP."""
    network = network_factory(tenant=tenant, name=f"net-{n}", cidr=f"10.{n}.0.0/24")
    router = routers.router_create(tenant=tenant, name=f"r{n}", external_network=external)
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    vm = services.instance_create(network=network, hostname=f"vm{n}")
    routers.floating_ip_associate(floating_ip=routers.floating_ip_allocate(tenant=tenant, external_network=external),
                                  instance=vm)


def snapshot_queries(user, tenant) -> tuple[int, dict]:
    view = resolve_view(user, tenant_id=tenant.pk)
    with CaptureQueriesContext(connection) as queries:
        snapshot = build_snapshot(user, view)
    return len(queries), snapshot


def test_snapshot_has_routers_and_floating_ips_at_a_fixed_number_of_queries(two_tenants, network_factory, external):
    alice, acme = two_tenants["alice"], two_tenants["acme"]
    for i in (1, 2):  # two VTEP nodes: every new network has two DHCP servers, a tunnel between them
        nodes.node_register(name=f"n{i}", vtep_address=f"10.250.0.{i}")
    add_routed_instance(acme, network_factory, external, 1)
    one, snapshot = snapshot_queries(alice, acme)
    [router] = snapshot["routers"]
    assert router["name"] == "r1" and router["external_ip"].startswith("203.0.113.") and len(router["subnets"]) == 1
    assert router["url"] == f"/routers/{router['id']}/"
    [fip] = snapshot["floating_ips"]
    assert fip["instance"] and fip["address"].startswith("203.0.113.")
    assert [n["name"] for n in snapshot["external_networks"]] == ["public"]
    for n in (2, 3, 4):
        add_routed_instance(acme, network_factory, external, n)
    three, snapshot = snapshot_queries(alice, acme)
    assert len(snapshot["routers"]) == 4 and len(snapshot["floating_ips"]) == 4
    routed = {n["id"] for n in snapshot["networks"] if n["name"].startswith("net-")}
    servers = {d["network"]: [s["node"] for s in d["servers"]] for d in snapshot["dhcp_servers"]}
    assert len(routed) == 4 and all(sorted(servers[n]) == ["n1", "n2"] for n in routed)
    assert {n["name"]: n["state"] for n in snapshot["nodes"]}.items() >= {("n1", "live"), ("n2", "live")}
    assert all(i["node"] for i in snapshot["instances"]) and all(n["vni"] for n in snapshot["networks"])
    assert three == one


def test_router_and_floating_ip_events_reach_their_tenant_only(two_tenants, external):
    acme, globex = two_tenants["acme"], two_tenants["globex"]

    async def body():
        comm = communicator(two_tenants["alice"], f"/ws/live/tenants/{acme.pk}/")
        connected, _ = await comm.connect(timeout=5)
        assert connected
        snapshot = await comm.receive_json_from(timeout=5)
        assert snapshot["routers"] == [] and snapshot["floating_ips"] == []
        # Globex's router and floating IP first: if acme's socket were told of them they would arrive before acme's.
        await sync_to_async(routers.router_create)(tenant=globex, name="globex-secret-router",
                                                   external_network=external)
        await sync_to_async(routers.floating_ip_allocate)(tenant=globex, external_network=external)
        await sync_to_async(routers.router_create)(tenant=acme, name="acme-edge")
        got = await comm.receive_json_from(timeout=5)
        assert got["event"].startswith("router.") and got["data"]["name"] == "acme-edge"
        assert await comm.receive_nothing(timeout=0.5)
        await comm.send_json_to({"type": "resync"})
        fresh = await comm.receive_json_from(timeout=5)
        assert [r["name"] for r in fresh["routers"]] == ["acme-edge"] and fresh["floating_ips"] == []
        assert "globex-secret-router" not in str(fresh)
        await comm.disconnect()

    async_to_sync(body)()
    assert Router.objects.filter(tenant=globex).count() == 1
