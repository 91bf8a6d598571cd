"""Run the agent's work synchronously, for tests, benchmarks and fault drills.

The real agent runs a SimpleWorker plus a lease-watcher loop; these helpers do the same work in the calling
thread so a test can step through it deterministically — with the same Redis queue and the same jobs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import django_rq
from django.conf import settings
from rq import SimpleWorker

from . import jobs
from .models import Network


def run_jobs() -> int:
    """Run every queued agent job in this process (a burst SimpleWorker on the node's queue, real Redis)."""
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    worker = SimpleWorker([queue], connection=queue.connection)
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    failed = queue.failed_job_registry
    if failed.count:
        ids = failed.get_job_ids()
        job = queue.fetch_job(ids[0])
        for job_id in ids:
            failed.remove(job_id, delete_job=True)
        result = job.latest_result() if job else None
        detail = result.exc_string if result is not None else ids[0]
        raise AssertionError(f"{len(ids)} job(s) failed; first: {detail}")
    return worker.successful_job_count


def settle(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Run jobs and sync leases (what the agent's loops do) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        run_jobs()
        for network in Network.objects.all():
            jobs.sync_leases(network)
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def reset_agent_queue() -> None:
    """Forget every job, registry entry and network lock of this node's agent queue.

    A test that killed an agent mid-job leaves ids in the queue's intermediate list and started registry; the
    next worker's maintenance would fail them ("stuck in intermediate queue") inside an unrelated test.
    """
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    queue.empty()
    for job_id in queue.failed_job_registry.get_job_ids():
        queue.failed_job_registry.remove(job_id, delete_job=True)
    keys = [queue.intermediate_queue_key, queue.started_job_registry.key,
            *queue.connection.scan_iter("netdash:lock:*")]
    queue.connection.delete(*keys)


def require_root() -> None:
    """Host tests need root; CI runs as root, so there a missing privilege fails the test instead of skipping it."""
    import pytest

    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("host tests need root, and CI runs as root: something is wrong with this machine")
        pytest.skip("host tests need root (network namespaces)")

