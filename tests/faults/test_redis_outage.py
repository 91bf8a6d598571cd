"""Redis restarted while jobs are queued and leases are arriving.

The test runs its own Redis (``private_redis``) so the session's is untouched; it has no persistence, so a
restart loses every queued job — exactly the case the periodic reconcile must re-derive from the database.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.utils import timezone
from faults_helpers import build, converged, host_counts, lease_mismatches, renew, wait_for
from rest_framework.test import APIClient

from tenants import queue, services
from tenants.choices import LeaseEventKind, ObjectStatus
from tenants.hostspecs import driver
from tenants.models import Instance, LeaseEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def _web_while_down(user, network) -> dict[str, object]:
    """What the web tier answers while Redis is down: pages and the API must not fail."""
    from django.test import Client

    seen: dict[str, object] = {"queue_available": queue.queue_available()}
    browser = Client()
    browser.force_login(user)
    for label, url in (("network_list", "/"), ("network_detail", f"/networks/{network.pk}/")):
        seen[label] = browser.get(url).status_code
    api = APIClient()
    api.force_authenticate(user)
    seen["api_list"] = api.get("/api/v1/instances/").status_code
    created = api.post("/api/v1/instances/", {"network": network.pk, "hostname": "rr-api"}, format="json")
    seen["api_create"] = created.status_code
    seen["api_create_status"] = created.json().get("status") if created.status_code < 300 else created.content[:200]
    return seen


def test_redis_restart_loses_no_job_and_no_lease_event(private_redis, start_agent, report, django_user_model):
    agent = start_agent(reconcile_seconds=3, redis_url=private_redis.url)
    user = django_user_model.objects.create_superuser(username="ops", password="pw-not-used-elsewhere-9")
    network, first = build("rr", "10.64.0.0/24", 3)
    assert wait_for(lambda: converged([network]), 30), f"setup did not converge:\n{agent.log_tail()}"
    time.sleep(1.0)  # lease expiries have whole-second resolution: make the renewals below visible

    # Jobs queued (and one running, likely) when Redis goes away; Redis keeps nothing across the restart.
    queued = [services.instance_create(network=network, hostname=f"rr-q{i}") for i in range(5)]
    private_redis.stop()
    down_at, down_wall = time.monotonic(), timezone.now()

    # While Redis is down: leases keep arriving (renewals, a DHCP client killed), the web keeps answering,
    # services keep saving rows.
    renewed = {i.hostname: renew(i) for i in first}
    victim = first[0]
    os.kill(driver().udhcpc_pid(victim.kernel_id), signal.SIGKILL)
    web = _web_while_down(user, network)
    during = [services.instance_create(network=network, hostname=f"rr-d{i}") for i in range(2)]
    pending_rows = Instance.objects.filter(pk__in=[i.pk for i in during], status=ObjectStatus.PENDING).count()
    synced = wait_for(lambda: LeaseEvent.objects.filter(kind=LeaseEventKind.RENEW, at__gte=down_wall)
                      .count() >= len(first), 5)
    time.sleep(max(0.0, 4.0 - (time.monotonic() - down_at)))  # let the agent's loops meet the outage
    alive_during = agent.alive()
    outage = round(time.monotonic() - down_at, 3)

    private_redis.start()
    back_at = time.monotonic()
    everyone = Instance.objects.filter(network=network)
    took = wait_for(lambda: converged([network]) and not lease_mismatches([network]), 60)
    recovered = round(time.monotonic() - back_at, 3)
    renew_events = LeaseEvent.objects.filter(kind=LeaseEventKind.RENEW, at__gte=down_wall).count()
    report(injected=f"redis stopped {outage} s with {len(queued)} realise jobs queued; during the outage "
                    f"{len(first)} renewals, 1 udhcpc SIGKILL, {len(during)} service + 1 API creates",
           renewed_same_ip=sum(renewed[i.hostname] == i.ip_address for i in first),
           renew_events_synced_during_outage_s=synced, web_during_outage=web, pending_rows_saved=pending_rows,
           agent_alive_during=alive_during, agent_alive_after=agent.alive(),
           converged_after_redis_back_s=took, recovered_wall_s=recovered, instances=everyone.count(),
           lease_mismatches=lease_mismatches([network]), renew_events=renew_events, host=host_counts(),
           worker_crashes_logged=agent.log_count("found an unhandled exception"),
           exit_status_on_sigterm=(exit_status := agent.stop()))
    assert alive_during, f"the agent died in the outage:\n{agent.log_tail()}"
    assert exit_status == 0, f"the agent did not stop cleanly on SIGTERM after the outage:\n{agent.log_tail()}"
    assert renewed == {i.hostname: i.ip_address for i in first}
    assert synced is not None, "lease renewals during the outage did not reach the database"
    assert web["queue_available"] is False
    assert web["network_list"] == web["network_detail"] == web["api_list"] == 200, web
    assert web["api_create"] == 201 and web["api_create_status"] == ObjectStatus.PENDING, web
    assert pending_rows == len(during)
    assert took is not None, f"did not converge after Redis came back:\n{agent.log_tail()}"
    assert everyone.count() == len(first) + len(queued) + len(during) + 1
