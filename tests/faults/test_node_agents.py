"""Agents of two nodes on one machine, one prefix and one state root, reconciling every second: neither ever
touches the other's namespaces, processes or files (issue 13: "agents on one machine must never reap each
other's namespaces, processes or files")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from faults_helpers import wait_for
from rq.job import Job

from tenants import services
from tenants.choices import ObjectStatus
from tenants.host import HostConfig, LinuxHostDriver, netns
from tenants.models import Network, Tenant
from tenants.queue import agent_queue

NODES = ("n1", "n2")
ROUNDS = 3


def node_driver(node: str) -> LinuxHostDriver:
    """The driver an agent of ``node`` uses (hostspecs.host_config with NETDASH_NODE=node)."""
    return LinuxHostDriver(HostConfig(prefix=settings.NETDASH_PREFIX,
                                      state_dir=(settings.NETDASH_STATE_DIR / node).resolve()))


def observed(network: Network) -> tuple[object, ...]:
    """Everything of a network (and its instance) that another node's reconcile must leave exactly as it is."""
    d, n = node_driver(network.node), node_driver(network.node).names
    instance = network.instances.get()
    return (d.dnsmasq_pid(network.kernel_id), d.udhcpc_pid(instance.kernel_id),
            netns.inode(n.seg_ns(network.kernel_id)), netns.inode(n.dhcp_ns(network.kernel_id)),
            netns.inode(n.inst_ns(instance.kernel_id)), d.instance_lease(instance.kernel_id),
            sorted(p.name for p in d.config.state_dir.iterdir()))


def reconciles_done(node: str) -> int:
    queue = agent_queue(node)
    jobs = Job.fetch_many(queue.finished_job_registry.get_job_ids(), connection=queue.connection)
    return sum(1 for job in jobs if job is not None and job.func_name == "tenants.jobs.reconcile")


def converged(network: Network) -> bool:
    row = Network.objects.get(pk=network.pk)
    instance = row.instances.get()
    d = node_driver(row.node)
    return (row.status == ObjectStatus.ACTIVE and instance.status == ObjectStatus.ACTIVE
            and d.dnsmasq_pid(row.kernel_id) is not None and d.udhcpc_pid(instance.kernel_id) is not None
            and d.instance_lease(instance.kernel_id) is not None)


@pytest.fixture
def node_queues() -> Iterator[None]:
    def reset() -> None:
        for node in NODES:
            queue = agent_queue(node)
            queue.empty()
            queue.connection.delete(queue.finished_job_registry.key, queue.failed_job_registry.key,
                                    queue.started_job_registry.key, queue.intermediate_queue_key)

    reset()
    yield
    reset()
    for node in NODES:  # the run's own state dirs of the two nodes (host_clean removes the namespaces)
        node_driver(node).remove_orphans(set(), set())


def test_two_node_agents_reconciling_repeatedly_never_touch_each_other(start_agent, node_queues):
    for node in NODES:
        start_agent(reconcile_seconds=1, node=node)
    networks = []
    for i in range(4):  # scheduled to the least-loaded live node: two networks on each
        tenant = Tenant.objects.create(name=f"Tenant na{i}", slug=f"na{i}")
        network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.66.0.0/24"})
        services.instance_create(network=network, hostname=f"na{i}-vm")
        networks.append(network)
    assert sorted(n.node for n in networks) == ["n1", "n1", "n2", "n2"]
    assert wait_for(lambda: all(converged(n) for n in networks), 90), "setup did not converge"
    before = {n.pk: observed(n) for n in networks}
    done = {node: reconciles_done(node) for node in NODES}
    assert wait_for(lambda: all(reconciles_done(node) >= done[node] + ROUNDS for node in NODES), 90), \
        f"the agents did not reconcile {ROUNDS} more times"
    assert {n.pk: observed(n) for n in networks} == before
    assert not Network.objects.exclude(status=ObjectStatus.ACTIVE).exists()
