"""API round trip against the real agent: network → subnet → instance over HTTP, then its DHCP lease read back.

Runs the queued host jobs with a burst worker on real Redis, realising namespaces and dnsmasq on the real kernel;
needs root (CI is root; without it ``host_clean`` fails the test, it never skips). The lease reaches the database
the way the agent's lease watcher brings it there (``jobs.sync_leases``), and everything is torn down with
``jobs.destroy_network``.
"""

from __future__ import annotations

import time

import django_rq
import pytest
from django.conf import settings
from rq import SimpleWorker

from tenants import jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]

LEASE_TIMEOUT_SECONDS = 30


def run_queued_jobs() -> None:
    """Run every queued agent job now, in this process.

    ``SimpleWorker`` rather than django-rq's default forking worker: a forked child would share this process's
    SQLite connection, which SQLite does not support.
    """
    worker = django_rq.get_worker(settings.NETDASH_AGENT_QUEUE, worker_class=SimpleWorker)
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    failed = queue.failed_job_registry.get_job_ids()
    assert not failed, f"agent job(s) failed: {[queue.fetch_job(j).latest_result().exc_string for j in failed]}"


def test_create_network_subnet_instance_and_read_its_lease(bearer_client, member_factory, tenant_factory,
                                                           host_clean, agent_queue):
    from tenants.models import Network

    tenant = tenant_factory(name="Round Trip", slug="round-trip")
    api = bearer_client(member_factory(tenant))
    network_id = None
    try:
        response = api.post("/api/v1/networks/", {"name": "rt-net"}, format="json")
        assert response.status_code == 201, response.json()
        network_id = response.json()["id"]
        response = api.post("/api/v1/subnets/", {"network": network_id, "cidr": "192.168.77.0/24",
                                                 "domain_name": "rt.internal", "lease_seconds": 600}, format="json")
        assert response.status_code == 201, response.json()
        response = api.post("/api/v1/instances/", {"network": network_id, "hostname": "rt-vm"}, format="json")
        assert response.status_code == 201, response.json()
        instance = response.json()
        assert agent_queue.count > 0, "services did not enqueue host jobs"

        deadline = time.monotonic() + LEASE_TIMEOUT_SECONDS
        leases: list[dict] = []
        while time.monotonic() < deadline:
            run_queued_jobs()
            jobs.sync_leases(Network.objects.get(pk=network_id))  # what the agent's lease watcher does
            leases = api.get(f"/api/v1/leases/?network={network_id}&status=active").json()["results"]
            if any(lease["instance"] == instance["id"] for lease in leases):
                break
            time.sleep(0.2)
        lease = next((lease for lease in leases if lease["instance"] == instance["id"]), None)
        assert lease is not None, f"no active lease for the instance after {LEASE_TIMEOUT_SECONDS}s: {leases}"
        assert lease["ip_address"] == instance["ip_address"]
        assert lease["mac_address"] == instance["mac_address"]

        network = api.get(f"/api/v1/networks/{network_id}/").json()
        assert network["status"] == "active", network
        assert network["lease_count"] == 1
        assert api.get(f"/api/v1/instances/{instance['id']}/").json()["status"] == "active"
    finally:
        if network_id is not None:
            jobs.destroy_network(network_id)
    assert not Network.objects.filter(pk=network_id).exists()
