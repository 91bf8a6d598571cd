"""Fixtures for the foundation tests (validators, services, admin)."""

import pytest


@pytest.fixture
def outbox(monkeypatch):
    """Record the jobs and events that would go to Redis instead of sending them.

    They are still only recorded when on-commit callbacks run, so tests can check that nothing leaves before
    commit. Tests of the real Redis path do not use this fixture.
    """
    sent = {"jobs": [], "events": []}
    monkeypatch.setattr("tenants.queue.enqueue_now",
                        lambda func, *args, node=None: sent["jobs"].append((func, args)) or True)
    monkeypatch.setattr("tenants.queue.enqueue_many_now",
                        lambda func, calls, node=None: sent["jobs"].extend((func, args) for args in calls) or True)
    monkeypatch.setattr("tenants.events.send_now",
                        lambda tenant_id, event_type, data: sent["events"].append((tenant_id, event_type)))
    return sent
