"""The agent's process monitor: restarts are asked for once per backoff, and networks in error are retried."""

import pytest

from tenants import services
from tenants.agent import Agent
from tenants.choices import ObjectStatus
from tenants.models import Network, Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def _queued(queue) -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in queue.get_jobs()]


def test_network_in_error_is_retried_once_per_backoff(agent_queue):
    tenant = Tenant.objects.create(name="T", slug="t")
    network = services.network_create(tenant=tenant, name="n", subnet={"cidr": "10.1.0.0/24"})
    agent_queue.empty()
    Network.objects.filter(pk=network.pk).update(status=ObjectStatus.ERROR, status_reason="address already in use")
    agent = Agent()
    agent.monitor_processes()
    agent.monitor_processes()  # within the backoff: not asked again
    assert _queued(agent_queue) == [("tenants.jobs.realise_network", (network.pk,))]
    agent.restarts.clear()  # backoff over
    agent.monitor_processes()
    assert len(_queued(agent_queue)) == 2


def test_active_network_without_dnsmasq_is_restarted(agent_queue):
    tenant = Tenant.objects.create(name="T", slug="t")
    network = services.network_create(tenant=tenant, name="n", subnet={"cidr": "10.1.0.0/24"})
    agent_queue.empty()
    # Active in the database, nothing on the host: exactly what a killed dnsmasq looks like to the monitor.
    Network.objects.filter(pk=network.pk).update(status=ObjectStatus.ACTIVE)
    Agent().monitor_processes()
    assert _queued(agent_queue) == [("tenants.jobs.realise_network", (network.pk,))]
