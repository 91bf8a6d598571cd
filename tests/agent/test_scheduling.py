"""Networks are scheduled to the least-loaded live node; agents register in real Redis as RQ workers."""

import django_rq
import pytest
from django.conf import settings
from rq import Queue, Worker

from tenants import services
from tenants.models import Network, Tenant
from tenants.queue import queue_name_for_node
from tenants.scheduling import live_nodes, schedule_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered_agents():
    """Register (without running) agents for two nodes, as `manage.py agent` would on two hosts."""
    connection = django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)
    workers = []
    for node in ("node-a", "node-b"):
        worker = Worker([Queue(queue_name_for_node(node), connection=connection)], connection=connection,
                        name=f"test-{node}")
        worker.register_birth()
        workers.append(worker)
    live_nodes(fresh=True)
    yield ["node-a", "node-b"]
    for worker in workers:
        worker.register_death()
    live_nodes(fresh=True)


def test_without_live_agents_networks_go_to_this_node():
    assert live_nodes(fresh=True) == []
    assert schedule_node() == settings.NETDASH_NODE


def test_least_loaded_live_node_wins(registered_agents):
    assert live_nodes() == ["node-a", "node-b"]
    tenant = Tenant.objects.create(name="T", slug="t")
    first = services.network_create(tenant=tenant, name="one")
    second = services.network_create(tenant=tenant, name="two")
    third = services.network_create(tenant=tenant, name="three")
    assert [first.node, second.node] == ["node-a", "node-b"]
    assert third.node == "node-a"
    assert Network.objects.filter(node="node-a").count() == 2


@pytest.mark.django_db(transaction=True)
def test_jobs_go_to_the_queue_of_the_node_the_network_is_scheduled_to(registered_agents):
    from tenants.queue import agent_queue

    for node in registered_agents:
        agent_queue(node).empty()
    tenant = Tenant.objects.create(name="T", slug="t")
    network = services.network_create(tenant=tenant, name="one")
    assert network.node == "node-a"
    jobs = agent_queue("node-a").get_jobs()
    assert [(j.func_name, j.args) for j in jobs] == [("tenants.jobs.realise_network", (network.pk,))]
    assert agent_queue("node-b").count == 0
    agent_queue("node-a").empty()
