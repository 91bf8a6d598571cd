"""Concurrency and load: many clients racing on one subnet, many tenants racing on one CIDR.

`make test` runs them on SQLite (writes serialised) and again on PostgreSQL, where the row locks really contend
(the agent subprocess included: it uses the same test database).

Threads call the service layer and the REST API at the same moment (a barrier) while a real agent realises
what they create; then every instance must hold a lease on a unique address with a unique MAC.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.apps import apps
from django.db import connection, connections
from faults_helpers import converged, expected_counts, host_counts, lease_mismatches, wait_for

from tenants import services
from tenants.choices import ObjectStatus
from tenants.hostspecs import driver
from tenants.models import Instance, Network, Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]

CLIENTS = 50
SAME_CIDR_TENANTS = 20


def _race(calls: list[Callable[[], object]]) -> tuple[list[object], list[float]]:
    """Run ``calls`` in one thread each, released together; return results (or exceptions) and durations."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    took: list[float] = [0.0] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            start = time.monotonic()
            try:
                results[i] = calls[i]()
            except Exception as exc:  # noqa: BLE001 - counted and reported, not hidden
                results[i] = exc
            took[i] = time.monotonic() - start
        finally:
            connections.close_all()  # each thread has its own database connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results, took


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


def test_50_concurrent_clients_on_one_subnet_get_unique_ips_and_macs_and_all_lease(start_agent, report,
                                                                                  django_user_model):
    start_agent()
    tenant = Tenant.objects.create(name="Load", slug="load")
    network = services.network_create(tenant=tenant, name="busy", subnet={"cidr": "10.67.0.0/24"})
    calls: list[Callable[[], object]] = []
    use_api = apps.is_installed("api")
    if use_api:
        from rest_framework.test import APIClient

        user = django_user_model.objects.create_superuser(username="loader", password="pw-not-used-elsewhere-7")

        def via_api(i: int) -> object:
            client = APIClient()
            client.force_authenticate(user)
            response = client.post("/api/v1/instances/", {"network": network.pk, "hostname": f"api{i}"},
                                   format="json")
            return response.status_code

        calls += [lambda i=i: via_api(i) for i in range(CLIENTS // 2)]
    calls += [lambda i=i: services.instance_create(network=network, hostname=f"svc{i}")
              for i in range(CLIENTS - len(calls))]

    start = time.monotonic()
    results, took = _race(calls)
    created_s = round(time.monotonic() - start, 3)
    errors = [repr(r) for r in results if isinstance(r, Exception) or (isinstance(r, int) and r >= 300)]
    leased_after = wait_for(lambda: converged([network]), 120, 0.1)
    total = round(time.monotonic() - start, 3)

    rows = list(Instance.objects.filter(network=network).values_list("ip_address", "mac_address"))
    dup_ips = [ip for ip, n in Counter(ip for ip, _ in rows).items() if n > 1]
    dup_macs = [mac for mac, n in Counter(mac for _, mac in rows).items() if n > 1]
    held = [str(getattr(driver().instance_lease(i.kernel_id), "ip", None))
            for i in Instance.objects.filter(network=network)]
    report(injected=f"{len(calls)} concurrent creates on one /24 ({CLIENTS // 2 if use_api else 0} via REST API, "
                    "rest via services) with the agent running",
           database=connection.vendor, created=len(rows), errors=errors[:5], error_count=len(errors),
           duplicate_ips=len(dup_ips),
           duplicate_macs=len(dup_macs), create_latency=_ms(took), all_created_s=created_s,
           all_leased_after_s=leased_after, first_create_to_all_leased_s=total,
           distinct_held_ips=len(set(held)), host=host_counts())
    assert not errors, errors[:5]
    assert len(rows) == CLIENTS
    assert not dup_ips and not dup_macs
    assert leased_after is not None, "not every instance leased"
    assert len(set(held)) == CLIENTS and set(held) == {ip for ip, _ in rows}
    assert not lease_mismatches([network])
    assert host_counts() == expected_counts([network])


def test_20_tenants_create_the_same_cidr_at_once_and_all_realise(start_agent, report):
    start_agent()
    tenants = [Tenant.objects.create(name=f"Same {n}", slug=f"same-{n}") for n in range(SAME_CIDR_TENANTS)]
    calls = [lambda t=t: services.network_create(tenant=t, name="lan", subnet={"cidr": "192.168.50.0/24"})
             for t in tenants]
    start = time.monotonic()
    results, took = _race(calls)
    errors = [repr(r) for r in results if isinstance(r, Exception)]
    networks = list(Network.objects.filter(tenant__in=tenants))
    realised = wait_for(lambda: converged(networks), 120, 0.1)
    total = round(time.monotonic() - start, 3)
    pids = {driver().dnsmasq_pid(n.kernel_id) for n in networks}
    report(injected=f"{len(calls)} tenants create 192.168.50.0/24 at the same moment", database=connection.vendor,
           created=len(networks),
           errors=errors[:5], error_count=len(errors), create_latency=_ms(took), all_realised_after_s=realised,
           wall_s=total, distinct_dnsmasq=len(pids - {None}), host=host_counts())
    assert not errors, errors[:5]
    assert len(networks) == SAME_CIDR_TENANTS
    assert realised is not None, "not every network was realised"
    assert set(Network.objects.filter(tenant__in=tenants).values_list("status", flat=True)) == {ObjectStatus.ACTIVE}
    assert len(pids - {None}) == SAME_CIDR_TENANTS
    assert host_counts() == expected_counts(networks)
