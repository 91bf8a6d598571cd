"""Jobs and events leave only after commit; with Redis up they land in Redis, with Redis down nothing breaks.

No worker is needed: these tests look at the queue itself.
"""

import logging
import os
import socket

import django_rq
import pytest
from django.conf import settings
from redis import Redis
from rq import Queue

from tenants import events, queue, services
from tenants.choices import ObjectStatus
from tenants.models import Instance, Network


def require_redis():
    if queue.queue_available():
        return
    if os.environ.get("REDIS_URL"):
        pytest.fail(f"REDIS_URL={os.environ['REDIS_URL']} is set (scripts/test.sh) but Redis does not answer")
    pytest.skip("no Redis here; scripts/test.sh starts one")


def jobs_for(network):
    q = django_rq.get_queue(queue.queue_name_for_node(network.node))
    return [job for job in q.get_jobs() if job.args and job.args[0] == network.pk]


@pytest.mark.django_db
def test_network_job_is_on_its_node_queue_only_after_commit(network_factory, django_capture_on_commit_callbacks):
    require_redis()
    group = events.tenant_group
    # execute=True also runs callbacks registered by callbacks: django-rq's on_db_commit mode defers the enqueue
    # itself with on_commit, which in production runs at once because the transaction has already committed.
    with django_capture_on_commit_callbacks(execute=True):
        network = network_factory(cidr="10.0.0.0/24")
        seq_before = events.current_sequence(group(network.tenant_id))
        assert jobs_for(network) == []  # not before commit
    try:
        [job] = jobs_for(network)
        assert job.func_name == "tenants.jobs.realise_network"
        assert job.origin == queue.queue_name_for_node(network.node)
        # Two events (subnet.created, network.created), each numbered in the tenant's sequence.
        assert events.current_sequence(group(network.tenant_id)) == seq_before + 2
    finally:
        for job in jobs_for(network):
            job.delete()


@pytest.mark.django_db
def test_rolled_back_changes_enqueue_nothing(tenant_factory, django_capture_on_commit_callbacks):
    tenant = tenant_factory(quota_networks=0)
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(Exception, match="Quota reached"):
        services.network_create(tenant=tenant, name="lab", subnet={"cidr": "10.0.0.0/24"})
    assert callbacks == []


@pytest.fixture
def redis_down(monkeypatch):
    """Point the job queue, the agent registry and the event counter at a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    connection = Redis.from_url(dead, socket_timeout=1)
    monkeypatch.setattr(django_rq, "get_connection", lambda *a, **k: connection)
    monkeypatch.setattr(django_rq, "get_queue", lambda name="default", **k: Queue(name, connection=connection))
    monkeypatch.setattr(events, "_redis", Redis.from_url(dead, socket_timeout=1))
    monkeypatch.setattr(events, "get_channel_layer", lambda: None)
    return dead


@pytest.mark.django_db(transaction=True)
def test_every_write_succeeds_with_redis_down(redis_down, tenant_factory, caplog):
    assert not queue.queue_available()
    caplog.set_level(logging.WARNING, logger="tenants.queue")
    tenant = tenant_factory()
    network = services.network_create(tenant=tenant, name="lab", subnet={"cidr": "10.0.0.0/24"})
    subnet = network.subnets.get()
    instance = services.instance_create(network=network, hostname="vm1")
    services.instance_update(instance=instance, ip_address="10.0.0.50")
    services.subnet_update(subnet=subnet, lease_seconds=600)
    assert services.network_rerealise(networks=[network]) == 1
    services.network_delete(network=network)
    # Saved and committed; the rows wait (pending/deleting) for reconcile to re-derive the jobs.
    assert Instance.objects.get(pk=instance.pk).ip_address == "10.0.0.50"
    assert Network.objects.get(pk=network.pk).status == ObjectStatus.DELETING
    warnings = [r.getMessage() for r in caplog.records if "left for reconcile" in r.getMessage()]
    assert len(warnings) == 6
    assert "tenants.jobs.realise_network" in warnings[0]


@pytest.mark.django_db(transaction=True)
def test_admin_add_with_redis_down_is_not_a_500(redis_down, admin_client, tenant_factory):
    tenant = tenant_factory()
    page = admin_client.get("/admin/tenants/network/add/")
    data = {"tenant": tenant.pk, "name": "lab"}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    response = admin_client.post("/admin/tenants/network/add/", data)
    assert response.status_code == 302
    assert Network.objects.get(tenant=tenant, name="lab").status == ObjectStatus.PENDING


def test_queue_names_follow_the_node():
    assert queue.queue_name_for_node("n2") == "agent-n2"
    assert queue.queue_name_for_node("") == settings.NETDASH_AGENT_QUEUE
    # settings spells this node's queue itself (it cannot import tenants): it must be the same name.
    assert queue.queue_name_for_node(settings.NETDASH_NODE) == settings.NETDASH_AGENT_QUEUE


@pytest.mark.django_db
def test_bulk_create_puts_every_job_on_the_queue_after_commit(tenant_factory, django_capture_on_commit_callbacks):
    require_redis()
    tenant = tenant_factory()
    items = [{"name": f"n{i}", "subnet": {"cidr": "10.0.0.0/24"}} for i in range(5)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        made = services.network_create_many(tenant=tenant, networks=items)
        assert [jobs_for(n) for n in made] == [[]] * 5  # not before commit
    try:
        ids = [n.pk for n in made]
        queued = django_rq.get_queue(queue.queue_name_for_node(made[0].node)).get_jobs()
        assert [j.func_name for j in queued if j.args == (ids,)] == ["tenants.jobs.realise_network_batch"]
        # One pipeline for the jobs, not a callback (a Redis round trip) per network.
        assert [c.__qualname__ for c in callbacks].count("enqueue_many_on_commit.<locals>.<lambda>") == 1
        assert not any(c.__qualname__.startswith("enqueue_on_commit") for c in callbacks)
    finally:
        for job in django_rq.get_queue(queue.queue_name_for_node(made[0].node)).get_jobs():
            if job.func_name == "tenants.jobs.realise_network_batch":
                job.delete()


@pytest.mark.django_db(transaction=True)
def test_bulk_writes_commit_with_redis_down(redis_down, tenant_factory, caplog):
    caplog.set_level(logging.WARNING, logger="tenants.queue")
    tenant = tenant_factory()
    made = services.network_create_many(tenant=tenant, networks=[{"name": f"n{i}"} for i in range(3)])
    services.network_delete_many(networks=made)
    assert set(Network.objects.values_list("status", flat=True)) == {ObjectStatus.DELETING}
    warnings = [r.getMessage() for r in caplog.records if "left for reconcile" in r.getMessage()]
    assert len(warnings) == 2 and "1 tenants.jobs.realise_network_batch" in warnings[0]
