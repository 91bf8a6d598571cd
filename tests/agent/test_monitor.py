"""The agent's process monitor: restarts are asked for once per backoff, and networks in error are retried."""

import shutil

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


def test_lease_watcher_syncs_only_new_networks_with_something_to_sync(agent_queue, monkeypatch):
    """A bulk realise makes hundreds of directories with empty lease files: syncing each (a six-query
    transaction) took a quarter of the agent beside the realise job. Only a network with an ACK in its file, or
    with rows still saying "leased", is synced when it is first watched."""
    from tenants.host.leases import LeaseWatcher
    from tenants.models import Lease

    tenant = Tenant.objects.create(name="T", slug="t", quota_networks=5, quota_subnets=5)
    empty, in_file, in_rows = (services.network_create(tenant=tenant, name=n, subnet={"cidr": "10.1.0.0/24"})
                               for n in ("empty", "in-file", "in-rows"))
    agent = Agent()
    names = agent.driver.names
    for network in (empty, in_file, in_rows):
        names.net_dir(network.kernel_id).mkdir(parents=True, exist_ok=True)
        names.leases(network.kernel_id).write_text("")
    names.leases(in_file.kernel_id).write_text("1999999999 fa:16:3e:00:00:01 10.1.0.7 vm *\n")
    Lease.objects.create(subnet=in_rows.subnets.get(), ip_address="10.1.0.8", mac_address="fa:16:3e:00:00:02")
    synced: list[str] = []
    monkeypatch.setattr(agent, "_sync", lambda network: synced.append(network.name))
    watched: set[str] = set()
    try:
        with LeaseWatcher() as watcher:
            agent._watch(agent._serving([n.kernel_id for n in (empty, in_file, in_rows)]), watcher, watched)
    finally:
        for network in (empty, in_file, in_rows):
            shutil.rmtree(names.net_dir(network.kernel_id), ignore_errors=True)
    assert watched == {empty.kernel_id, in_file.kernel_id, in_rows.kernel_id}
    assert sorted(synced) == ["in-file", "in-rows"]
