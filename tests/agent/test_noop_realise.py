"""A realise job that finds the host already matching does nothing: no write, no event, no co-batch (issue 16).

Real kernel and dnsmasq: the network and its instance are realised by the agent's jobs first.
"""

from __future__ import annotations

import signal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import convergence, services
from tenants.choices import ObjectStatus
from tenants.host.process import kill, wait_gone
from tenants.hostspecs import driver
from tenants.models import Instance, Network, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def _writes(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]


def test_a_matching_host_costs_one_load_and_a_changed_one_is_repaired(host_clean, agent_queue):
    tenant = Tenant.objects.create(name="noop", slug="noop")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.0.0.0/24"})
    instance = services.instance_create(network=network, hostname="vm")
    assert settle(lambda: Instance.objects.get(pk=instance.pk).status == ObjectStatus.ACTIVE)
    pid = driver().dnsmasq_pid(network.kernel_id)
    other = services.network_create(tenant=tenant, name="other", subnet={"cidr": "10.0.1.0/24"})  # pending

    with CaptureQueriesContext(connection) as load:
        convergence.load_networks([network.pk])
    with CaptureQueriesContext(connection) as ctx:
        assert convergence.realise_network(network.pk) == "active"
    assert _writes(ctx) == []
    assert len(ctx.captured_queries) == len(load.captured_queries)  # loading its own network, nothing else
    assert driver().dnsmasq_pid(network.kernel_id) == pid
    assert Network.objects.get(pk=other.pk).status == ObjectStatus.PENDING  # no co-batch on the fast path

    kill(pid, signal.SIGKILL)
    wait_gone(pid)
    assert convergence.realise_network(network.pk) == "active"
    assert driver().dnsmasq_pid(network.kernel_id) not in (None, pid)
    assert Network.objects.get(pk=other.pk).status == ObjectStatus.ACTIVE  # the full path takes it along
