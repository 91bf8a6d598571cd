"""The web ``/metrics``: Prometheus text that parses, figures that move when what they count moves, and a scrape
refused to anyone but loopback (or the token holder). Real database, real Redis (scripts/test.sh)."""

from __future__ import annotations

import ipaddress
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tenants import lease_sync, queue, services
from tenants.choices import ObjectStatus
from tenants.host import DnsmasqLease
from tenants.status import network_set_status

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, from a loopback scrape of the web /metrics."""
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def test_networks_and_instances_by_status_follow_the_database(tenant_factory, agent_queue):
    tenant = tenant_factory()
    before = scrape()
    network = services.network_create(tenant=tenant, name="m", subnet={"cidr": "10.81.0.0/24"})
    created = scrape()
    assert value(created, "netdash_networks", status="pending") == value(before, "netdash_networks",
                                                                         status="pending") + 1
    network_set_status(network_id=network.pk, status=ObjectStatus.ACTIVE)
    activated = scrape()
    assert value(activated, "netdash_networks", status="pending") == value(before, "netdash_networks",
                                                                           status="pending")
    assert value(activated, "netdash_networks", status="active") == value(before, "netdash_networks",
                                                                          status="active") + 1
    services.instance_create(network=network, hostname="m1")
    assert value(scrape(), "netdash_instances", status="pending") == value(activated, "netdash_instances",
                                                                           status="pending") + 1
    assert value(activated, "netdash_database_up") == 1 and value(activated, "netdash_redis_up") == 1


def test_a_lease_counts_for_its_subnet_and_gives_a_latency_sample(tenant_factory, agent_queue):
    network = services.network_create(tenant=tenant_factory(), name="l", subnet={"cidr": "10.82.0.0/28"})
    subnet = network.subnets.get()
    instance = services.instance_create(network=network, hostname="l1")
    labels = {"node": network.node, "network": network.pk, "subnet": subnet.pk}
    before = scrape()
    assert value(before, "netdash_subnet_pool_size", **labels) > 0
    assert value(before, "netdash_subnet_leases_active", **labels) == 0
    entry = DnsmasqLease(expiry=int(time.time()) + 3600, mac=instance.mac_address,
                         ip=ipaddress.ip_address(instance.ip_address), hostname="l1", client_id="*")
    lease_sync.sync_network_leases(network, [entry], changed_at=time.time())
    after = scrape()
    assert value(after, "netdash_subnet_leases_active", **labels) == 1
    pool = value(after, "netdash_subnet_pool_size", **labels)
    assert value(after, "netdash_subnet_pool_utilisation", **labels) == pytest.approx(1 / pool)
    assert value(after, "netdash_lease_publish_latency_seconds_count") == value(
        before, "netdash_lease_publish_latency_seconds_count") + 1


def test_jobs_per_queue_count_what_is_queued(agent_queue):
    name = agent_queue.name
    before = value(scrape(), "netdash_jobs", queue=name, state="queued")
    assert queue.enqueue_now("tenants.jobs.reconcile", "nowhere")
    assert value(scrape(), "netdash_jobs", queue=name, state="queued") == before + 1


def test_websocket_clients_are_counted_while_connected(tenant_factory, member_factory):
    tenant = tenant_factory()
    user = member_factory(tenant)
    label = {"consumer": "LiveConsumer"}
    before = value(scrape(), "netdash_websocket_clients", **label)

    async def body():
        comm = communicator(user, f"/ws/live/tenants/{tenant.pk}/")
        connected, _ = await comm.connect(timeout=5)
        assert connected
        await comm.receive_json_from(timeout=5)  # the snapshot
        during = value(await _scrape_async(), "netdash_websocket_clients", **label)
        await comm.disconnect()
        refused = communicator(AnonymousUser(), f"/ws/live/tenants/{tenant.pk}/")
        assert not (await refused.connect(timeout=5))[0]
        return during

    assert async_to_sync(body)() == before + 1
    assert value(scrape(), "netdash_websocket_clients", **label) == before


async def _scrape_async():
    return await sync_to_async(scrape)()


def communicator(user, path: str) -> WebsocketCommunicator:
    """The live routes with ``scope["user"]`` preset (as tests/live does)."""
    from live.routing import websocket_urlpatterns

    inner = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        return await inner(dict(scope, user=user), receive, send)

    return WebsocketCommunicator(app, path)


# --- who may scrape -------------------------------------------------------------------------------------

def test_metrics_refuse_a_remote_or_proxied_scrape_without_token():
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403
    # Behind a reverse proxy on this host every request comes from loopback: the proxy's header gives it away.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_with_a_token_need_it_even_from_loopback(settings):
    settings.NETDASH_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    ok = client.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert ok.status_code == 200
    assert b"netdash_networks" in ok.content


def test_healthz_asks_nothing_and_readyz_names_the_missing_agent():
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")  # no agent runs in this test
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["agents"]
    assert body["checks"]["database"] == {"ok": True} and body["checks"]["redis"] == {"ok": True}


def test_the_example_dashboard_graphs_only_metrics_that_exist():
    """deploy/monitoring/grafana-dashboard.json names metrics by hand; a renamed metric must fail here."""
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy/monitoring/grafana-dashboard.json")
                           .read_text())
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name)
            for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"netdash_\w+", target["expr"])}
    response = Client().get("/metrics")
    exposed = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert used and used <= exposed, sorted(used - exposed)
