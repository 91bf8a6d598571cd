"""``instance_create_many``: every instance with its address, MAC and node in one transaction, or none; one agent
job per node for each batch, a realise of the network on its other nodes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tenants import nodes, services
from tenants.models import Instance

pytestmark = pytest.mark.django_db


def test_many_instances_are_created_together_with_a_job_per_node_and_batch(network_factory, outbox, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    monkeypatch.setattr("tenants.queue.BATCH", 2)
    network = network_factory(cidr="10.5.0.0/24")
    outbox["jobs"].clear()
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr("tenants.events.send_many", lambda items: sent.extend((t, e) for t, e, _ in items))
    with django_capture_on_commit_callbacks(execute=True):
        made = services.instance_create_many(network=network, items=[{"hostname": f"vm{i}"} for i in range(3)])
    assert [i.ip_address for i in made] == ["10.5.0.3", "10.5.0.4", "10.5.0.5"]
    ids = [i.pk for i in made]
    assert outbox["jobs"] == [("tenants.jobs.realise_instance_batch", (ids[:2],)),
                              ("tenants.jobs.realise_instance_batch", (ids[2:],))]
    assert sent == [(network.tenant_id, "instance.created")] * 3  # one round


def test_the_quota_counts_every_instance_asked_for_and_nothing_is_kept(tenant_factory, network_factory, outbox):
    tenant = tenant_factory(quota_instances=3)
    network = network_factory(tenant=tenant, cidr="10.5.0.0/24")
    services.instance_create(network=network, hostname="first")
    with pytest.raises(ValidationError, match="3 more asked for"):
        services.instance_create_many(network=network, items=[{"hostname": f"vm{i}"} for i in range(3)])
    with pytest.raises(ValidationError, match=r"Instance 2 of 2 \('first'\)"):
        services.instance_create_many(network=network, items=[{"hostname": "new"}, {"hostname": "first"}])
    assert list(Instance.objects.values_list("hostname", flat=True)) == ["first"]


def test_on_several_nodes_each_node_gets_its_instances_and_the_dhcp_node_the_network(
        network_factory, monkeypatch, django_capture_on_commit_callbacks):
    nodes.node_register(name="net-1", roles="dhcp", vtep_address="10.250.0.1")
    nodes.node_register(name="cpu-1", roles="compute", vtep_address="10.250.0.2")
    nodes.node_register(name="cpu-2", roles="compute", vtep_address="10.250.0.3")
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: None)
    network = network_factory(cidr="10.5.0.0/24")
    sent: list[tuple[str | None, str, tuple]] = []
    monkeypatch.setattr("tenants.queue.enqueue_now",
                        lambda func, *args, node=None: sent.append((node, func, args)) or True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now",
                        lambda func, calls, node=None: sent.extend((node, func, a) for a in calls) or True)
    with django_capture_on_commit_callbacks(execute=True):
        made = services.instance_create_many(network=network, items=[{"hostname": f"vm{i}"} for i in range(4)])
    by_node = {node: sorted(i.pk for i in made if i.node == node) for node in ("cpu-1", "cpu-2")}
    assert [len(v) for v in by_node.values()] == [2, 2]  # least loaded first, in turn
    assert sorted(sent) == sorted([("cpu-1", "tenants.jobs.realise_instance_batch", (by_node["cpu-1"],)),
                                   ("cpu-2", "tenants.jobs.realise_instance_batch", (by_node["cpu-2"],)),
                                   ("net-1", "tenants.jobs.realise_network", (network.pk,))])
