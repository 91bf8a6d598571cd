"""Metrics and readiness against the real stack: a real agent subprocess (with its own loopback /metrics), the
test's Redis stopped and started, real dnsmasq and udhcpc.

What must hold: the agent's figures move when what they count happens on the host (a lease → a latency sample,
a killed dnsmasq → one restart), and ``/readyz`` turns 503 naming what is missing — Redis, or the last agent —
and 200 again once it is back.
"""

from __future__ import annotations

import os
import signal
import urllib.request

import psutil
import pytest
from django.conf import settings
from django.test import Client
from faults_helpers import build, converged, free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families

from tenants.hostspecs import driver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def agent_metrics(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        return samples(response.read().decode())


def web_metrics() -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return samples(response.content.decode())


def restarts(port: int, daemon: str) -> float:
    return agent_metrics(port).get(("netdash_daemon_restarts_total",
                                    (("daemon", daemon), ("node", settings.NETDASH_NODE))), 0.0)


def readiness() -> tuple[int, list[str]]:
    response = Client().get("/readyz")
    return response.status_code, response.json()["failed"]


def test_agent_metrics_count_a_lease_and_a_dnsmasq_restart(start_agent, monkeypatch, report):
    port = free_port()
    monkeypatch.setenv("NETDASH_AGENT_METRICS_PORT", str(port))
    agent = start_agent()
    bound = {c.laddr for c in psutil.Process(agent.pid).net_connections(kind="tcp") if c.status == "LISTEN"}
    assert bound == {("127.0.0.1", port)}, f"the agent's /metrics must listen on loopback only: {bound}"
    before = agent_metrics(port)
    latency_before = before.get(("netdash_lease_publish_latency_seconds_count", ()), 0.0)
    network, _ = build("om", "10.65.0.0/24", 1)
    assert wait_for(lambda: converged([network]), 30), agent.log_tail()
    after = agent_metrics(port)
    latency_after = after.get(("netdash_lease_publish_latency_seconds_count", ()), 0.0)
    assert latency_after >= latency_before + 1, "the lease reached the database without a latency sample"
    assert ("netdash_reconcile_last_duration_seconds", (("node", settings.NETDASH_NODE),)) in after
    web = web_metrics()
    node = (("node", settings.NETDASH_NODE),)
    assert web[("netdash_agent_up", node)] == 1
    assert web[("netdash_agent_heartbeat_age_seconds", node)] >= 0
    labels = (("network", str(network.pk)), ("node", network.node), ("subnet", str(network.subnets.get().pk)))
    assert web[("netdash_subnet_leases_active", labels)] == 1

    dnsmasq_before = restarts(port, "dnsmasq")
    os.kill(driver().dnsmasq_pid(network.kernel_id), signal.SIGKILL)
    counted = wait_for(lambda: restarts(port, "dnsmasq") == dnsmasq_before + 1, 30)
    healed = wait_for(lambda: converged([network]), 30)
    report(lease_latency_samples=latency_after - latency_before, restart_counted_s=counted, healed_s=healed,
           restarts_after=restarts(port, "dnsmasq"))
    assert counted is not None, agent.log_tail()
    assert healed is not None and restarts(port, "dnsmasq") == dnsmasq_before + 1


def test_readyz_is_red_without_an_agent_and_green_with_one(start_agent, report):
    assert readiness() == (503, ["agents"])
    first = start_agent()
    assert readiness() == (200, [])
    first.stop()
    red = wait_for(lambda: readiness() == (503, ["agents"]), 30)
    start_agent()
    green = wait_for(lambda: readiness() == (200, []), 30)
    report(red_after_last_agent_stopped_s=red, green_after_agent_started_s=green)
    assert red is not None and green is not None


def test_readyz_names_redis_while_it_is_down(private_redis, start_agent, report):
    agent = start_agent(redis_url=private_redis.url)
    assert readiness() == (200, [])
    private_redis.stop()
    status, failed = readiness()
    private_redis.start()
    green = wait_for(lambda: readiness() == (200, []), 60)
    report(while_down=(status, failed), green_after_restart_s=green)
    assert status == 503 and "redis" in failed, (status, failed)
    assert green is not None, agent.log_tail()
