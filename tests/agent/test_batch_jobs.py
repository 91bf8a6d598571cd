"""A bulk write's batch jobs (issue 16): one job per node for up to ``queue.BATCH`` networks, not one per network.

Real Redis, kernel and dnsmasq. A network whose lock another job holds is not skipped: the batch does the others
at once, then waits for that lock alone (holding none) and does it too.
"""

from __future__ import annotations

import threading
import time

import pytest

from tenants import convergence, locks, services
from tenants.choices import ObjectStatus
from tenants.hostspecs import driver
from tenants.models import Instance, Network, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def _hold(network_id: int, seconds: float) -> threading.Thread:
    """Another job holding the network's lock for ``seconds`` (a live holder: it is not taken over)."""
    taken = threading.Event()

    def run() -> None:
        with locks.network_lock(network_id):
            taken.set()
            time.sleep(seconds)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert taken.wait(10)
    return thread


def test_a_batch_job_realises_and_tears_down_every_network_even_one_whose_lock_is_busy(host_clean, agent_queue):
    tenant = Tenant.objects.create(name="batch", slug="batch")
    made = services.network_create_many(tenant=tenant, networks=[
        {"name": f"n{i}", "subnet": {"cidr": f"10.{i}.0.0/24"}} for i in range(4)])
    ids = [n.pk for n in made]
    assert [(j.func_name, j.args) for j in agent_queue.get_jobs()] == [("tenants.jobs.realise_network_batch", (ids,))]

    busy = _hold(ids[1], 1.0)
    assert convergence.realise_network_batch(ids) == "active"
    busy.join()
    assert set(Network.objects.values_list("status", flat=True)) == {ObjectStatus.ACTIVE}
    assert all(driver().dnsmasq_pid(n.kernel_id) is not None for n in made)

    services.network_delete_many(networks=list(Network.objects.filter(pk__in=ids)))
    busy = _hold(ids[2], 1.0)
    assert convergence.destroy_network_batch(ids) == "deleted"
    busy.join()
    assert not Network.objects.exists()
    assert driver().scan_host().networks == {}


def test_a_bulk_create_of_instances_is_one_job_and_every_instance_leases(host_clean, agent_queue):
    tenant = Tenant.objects.create(name="burst", slug="burst")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.7.0.0/24"})
    assert settle(lambda: Network.objects.get(pk=network.pk).status == ObjectStatus.ACTIVE)
    made = services.instance_create_many(network=network, items=[{"hostname": f"vm{i}"} for i in range(5)])
    assert [(j.func_name, j.args) for j in agent_queue.get_jobs()] == [
        ("tenants.jobs.realise_instance_batch", ([i.pk for i in made],))]

    def held(i: Instance) -> str | None:
        lease = driver().instance_lease(i.kernel_id)
        return str(lease.ip) if lease else None

    assert settle(lambda: [held(i) for i in made] == [i.ip_address for i in made]
                  and set(Instance.objects.values_list("status", flat=True)) == {ObjectStatus.ACTIVE})
