"""Fixtures for the router tests: an external network made by an administrator, and a tenant network behind it."""

import pytest

from tenants import routers


@pytest.fixture
def outbox(monkeypatch):
    """Record the jobs and events that would go to Redis instead of sending them (as tests/foundation does), so
    tests can check what a service enqueues after commit."""
    sent = {"jobs": [], "events": []}
    monkeypatch.setattr("tenants.queue.enqueue_now",
                        lambda func, *args, node=None: sent["jobs"].append((func, args)) or True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now",
                        lambda func, calls, node=None: sent["jobs"].extend((func, args) for args in calls) or True)
    monkeypatch.setattr("tenants.events.send_now",
                        lambda tenant_id, event_type, data: sent["events"].append((tenant_id, event_type)))
    return sent


@pytest.fixture
def external_factory(tenant_factory):
    """An external network on a TEST-NET range, created by the operators' tenant through the service."""

    def make(cidr="203.0.113.0/24", name="public", simulated_upstream=False, **subnet):
        operators = tenant_factory(slug=f"ops-{name}")
        return routers.external_network_create(tenant=operators, name=name, subnet={"cidr": cidr, "gateway": "auto",
                                                                                     **subnet},
                                               simulated_upstream=simulated_upstream)

    return make
