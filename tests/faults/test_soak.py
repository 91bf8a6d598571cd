"""Soak: create/delete churn with a real agent, then count what is left — namespaces, processes, state files,
DB rows, queue leftovers. ~30 s in CI; ``make soak`` (``NETDASH_SOAK=1``) runs the long one for minutes."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import django_rq
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections
from faults_helpers import (
    converged,
    expected_counts,
    host_counts,
    lease_mismatches,
    our_processes,
    resolver_gaps,
    wait_for,
)

from tenants import locks, services
from tenants.choices import ObjectStatus
from tenants.hostspecs import driver
from tenants.models import Instance, Lease, LeaseEvent, Network, Subnet, Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]

MAX_NETWORKS = 4  # per churning client
MAX_INSTANCES = 4  # per network


def _churn(client: int, tenant: Tenant, seconds: float, seed: int, counts: Counter, failures: list[str]) -> None:
    """One client: random creates and deletes of networks and instances for ``seconds``."""
    rng = random.Random(seed + client)
    deadline = time.monotonic() + seconds
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            networks = list(Network.objects.filter(tenant=tenant).exclude(status=ObjectStatus.DELETING))
            roll = rng.random()
            try:
                if not networks or (roll < 0.15 and len(networks) < MAX_NETWORKS):
                    cidr = f"10.{70 + client}.{n % 250}.0/24"
                    services.network_create(tenant=tenant, name=f"c{client}n{n}", subnet={"cidr": cidr})
                    counts["network_create"] += 1
                elif roll < 0.25:
                    services.network_delete(network=rng.choice(networks))
                    counts["network_delete"] += 1
                else:
                    network = rng.choice(networks)
                    live = list(network.instances.exclude(status=ObjectStatus.DELETING))
                    if live and (len(live) >= MAX_INSTANCES or roll < 0.6):
                        services.instance_delete(instance=rng.choice(live))
                        counts["instance_delete"] += 1
                    else:
                        services.instance_create(network=network, hostname=f"c{client}i{n}")
                        counts["instance_create"] += 1
            except ValidationError as exc:  # e.g. the network went into "deleting" under us: a 4xx, not a bug
                counts["rejected"] += 1
                counts[f"rejected: {exc.messages[0][:40]}"] += 1
            except Exception as exc:  # noqa: BLE001 - reported, and fails the test
                failures.append(f"client {client}: {exc!r}")
            time.sleep(rng.uniform(0.05, 0.25))
    finally:
        connections.close_all()


def _soak(seconds: float, clients: int, start_agent, report) -> None:
    seed = int(os.environ.get("NETDASH_SOAK_SEED", time.time_ns() % 100000))
    start_agent(reconcile_seconds=5)  # the periodic reconcile runs during the churn too
    tenants = [Tenant.objects.create(name=f"Churn {c}", slug=f"churn-{c}") for c in range(clients)]
    counts: Counter = Counter()
    failures: list[str] = []
    threads = [threading.Thread(target=_churn, args=(c, tenants[c], seconds, seed, counts, failures))
               for c in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    churned = round(time.monotonic() - start, 1)

    # Whatever survived the churn must be fully realised, with nothing extra on the host.
    remaining = list(Network.objects.all())
    settled = wait_for(lambda: converged(Network.objects.all())
                       and host_counts() == expected_counts(Network.objects.all()), 90, 0.2)
    at_settle = {"networks": Network.objects.count(), "networks_at_end_of_churn": len(remaining),
                 "instances": Instance.objects.count(), "host": host_counts(),
                 "expected": expected_counts(Network.objects.all()),
                 "lease_mismatches": lease_mismatches(Network.objects.all()),
                 "resolver_gaps": resolver_gaps(Network.objects.all())}

    # Then delete everything and count what is left.
    for network in Network.objects.exclude(status=ObjectStatus.DELETING):
        services.network_delete(network=network)
    emptied = wait_for(lambda: not Network.objects.exists() and host_counts()["namespaces"] == 0, 90, 0.2)
    time.sleep(0.5)  # let the kernel and the lease watcher finish with the last removals
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    failed_ids = queue.failed_job_registry.get_job_ids()
    first_failure = None
    if failed_ids:
        job = queue.fetch_job(failed_ids[0])
        result = job.latest_result() if job else None
        first_failure = (result.exc_string or "")[-600:] if result else failed_ids[0]
    leftovers = {
        "host": host_counts(),
        "processes": {k: len(v) for k, v in our_processes().items()},
        "stray_pids": driver().scan_host().stray_pids,
        "db": {"networks": Network.objects.count(), "subnets": Subnet.objects.count(),
               "instances": Instance.objects.count(), "leases": Lease.objects.count(),
               "lease_events": LeaseEvent.objects.count()},
        "queued_jobs": queue.count, "failed_jobs": len(failed_ids),
        "locks": len(locks.lock_keys(queue.connection)),
    }
    report(injected=f"{clients} clients churning for {churned} s (seed {seed})",
           operations=dict(sorted(counts.items())), client_failures=failures[:5],
           settled_after_churn_s=settled, at_settle=at_settle, emptied_after_s=emptied, leftovers=leftovers,
           first_failed_job=first_failure)
    assert not failures, failures[:5]
    assert settled is not None, f"did not settle after the churn: {at_settle}"
    assert not at_settle["lease_mismatches"]
    assert emptied is not None, "deleting everything did not empty the host"
    assert leftovers["host"] == {"namespaces": 0, "dnsmasq": 0, "udhcpc": 0, "state_dirs": 0, "resolv_dirs": 0}
    assert not leftovers["stray_pids"]
    assert leftovers["db"] == {"networks": 0, "subnets": 0, "instances": 0, "leases": 0, "lease_events": 0}
    assert leftovers["failed_jobs"] == 0, first_failure
    assert leftovers["locks"] == 0


def test_churn_leaves_nothing_behind(start_agent, report):
    _soak(float(os.environ.get("NETDASH_CHURN_SECONDS", 30)), 2, start_agent, report)


@pytest.mark.slow  # deselected by pytest.ini's ``-m "not slow"``; `make soak` selects it with ``-m slow``
@pytest.mark.timeout(900)
def test_soak_leaves_nothing_behind(start_agent, report):
    _soak(float(os.environ.get("NETDASH_SOAK_SECONDS", 240)), 3, start_agent, report)
