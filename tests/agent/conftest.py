"""Fixtures for tests that run the real agent path: services → RQ (real Redis) → host driver → kernel."""

from __future__ import annotations

import os

import django_rq
import pytest
from django.conf import settings

from tenants.hostspecs import driver


def _require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("host tests need root, and CI runs as root: something is wrong with this machine")
        pytest.skip("host tests need root (network namespaces)")


@pytest.fixture
def host_clean():
    """Start and end with nothing carrying this test run's prefix on the host, even when the test fails."""
    _require_root()
    driver().remove_orphans(set(), set())
    yield driver()
    driver().remove_orphans(set(), set())


@pytest.fixture
def agent_queue():
    """An empty agent queue before and after the test."""
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    queue.empty()
    queue.failed_job_registry.cleanup()
    yield queue
    queue.empty()
