"""Races: real threads, each with its own database connection, hitting the services at the same moment.

The test database is a file with IMMEDIATE transactions (see settings), the same locking the web, worker and
lease watcher processes get in production on SQLite; on PostgreSQL the row locks and constraints do the work.
"""

import ipaddress
import itertools
import threading

import pytest
from django.core.exceptions import ValidationError

from tenants import services
from tenants.models import Instance, Network, Subnet, Tenant
from tenants.testing import run_concurrently, split

# These tests commit for real, so on-commit jobs and events would run: record them instead (``outbox``) so no
# job for a row that the next test's flush removes is left on the agent queue. The Redis path has its own tests.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbox")]


def test_concurrent_instance_creates_get_distinct_ips_and_macs(network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    n = 16

    def create(i):
        return services.instance_create(network=Network.objects.get(pk=network.pk), hostname=f"vm{i}")

    ok, errors = split(run_concurrently(n, create))
    assert errors == []
    rows = list(Instance.objects.filter(network=network))
    assert len(rows) == n
    ips = [r.ip_address for r in rows]
    assert len(set(ips)) == n
    assert len({r.mac_address for r in rows}) == n
    # IPAM hands out the lowest free addresses: exactly the first n of the pool, no gaps, no duplicates.
    first = ipaddress.ip_address("10.0.0.3")
    assert sorted(ips, key=ipaddress.ip_address) == [str(first + k) for k in range(n)]


def test_colliding_macs_are_retried_not_duplicated(network_factory, monkeypatch):
    network = network_factory(cidr="10.0.0.0/24")
    n = 8
    fresh = itertools.count(1)
    lock = threading.Lock()
    calls = threading.local()
    total = []

    def colliding_mac():
        # Every thread's first MAC is the same one, so all but one insert hit the unique constraint.
        first = not getattr(calls, "seen", False)
        calls.seen = True
        with lock:
            total.append(1)
            return "fa:16:3e:00:00:01" if first else f"fa:16:3e:10:00:{next(fresh):02x}"

    monkeypatch.setattr(services, "generate_mac", colliding_mac)
    ok, errors = split(run_concurrently(n, lambda i: services.instance_create(
        network=Network.objects.get(pk=network.pk), hostname=f"vm{i}")))
    assert errors == []
    macs = list(Instance.objects.filter(network=network).values_list("mac_address", flat=True))
    assert len(macs) == len(set(macs)) == n
    assert "fa:16:3e:00:00:01" in macs
    assert len(total) == 2 * n - 1  # one retry for each thread that lost the race


def test_one_fixed_ip_requested_by_many_at_once(network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    ok, errors = split(run_concurrently(8, lambda i: services.instance_create(
        network=Network.objects.get(pk=network.pk), hostname=f"vm{i}", ip_address="10.0.0.50")))
    assert len(ok) == 1
    assert len(errors) == 7
    for exc in errors:
        assert isinstance(exc, ValidationError), repr(exc)
        assert "10.0.0.50 is already reserved by instance" in " ".join(exc.messages)
    assert list(Instance.objects.values_list("ip_address", flat=True)) == ["10.0.0.50"]


def test_concurrent_network_creates_with_one_name(tenant_factory):
    tenant = tenant_factory()
    ok, errors = split(run_concurrently(6, lambda i: services.network_create(
        tenant=Tenant.objects.get(pk=tenant.pk), name="lab", subnet={"cidr": f"10.{i}.0.0/24"})))
    assert len(ok) == 1
    assert len(errors) == 5
    for exc in errors:
        assert isinstance(exc, ValidationError), repr(exc)
        assert exc.message_dict == {"name": ["This tenant already has a network named 'lab'."]}
    assert Network.objects.filter(tenant=tenant).count() == 1
    assert Subnet.objects.filter(network__tenant=tenant).count() == 1  # the losers' subnets rolled back


def test_concurrent_creates_cannot_exceed_the_instance_quota(tenant_factory):
    tenant = tenant_factory(quota_instances=5)
    network = services.network_create(tenant=tenant, name="lab", subnet={"cidr": "10.0.0.0/24"})
    ok, errors = split(run_concurrently(10, lambda i: services.instance_create(
        network=Network.objects.get(pk=network.pk), hostname=f"vm{i}")))
    assert len(ok) == 5
    assert all(isinstance(e, ValidationError) and "Quota reached" in e.messages[0] for e in errors), errors
    assert Instance.objects.filter(network__tenant=tenant).count() == 5


def test_concurrent_overlapping_subnets_on_one_network(network_factory):
    network = network_factory()
    cidrs = ["192.168.1.0/24", "192.168.1.0/25", "192.168.0.0/16", "192.168.1.128/25"]
    ok, errors = split(run_concurrently(len(cidrs), lambda i: services.subnet_create(
        network=Network.objects.get(pk=network.pk), cidr=cidrs[i])))
    assert all(isinstance(e, ValidationError) for e in errors), errors
    nets = [ipaddress.ip_network(s.cidr) for s in Subnet.objects.filter(network=network)]
    assert len(nets) == len(ok) >= 1
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_subnet_delete_racing_instance_create(network_factory):
    """Either the instance lands and the delete is refused, or the subnet goes and the create fails —
    always with a ValidationError, never a ProtectedError or an instance left on a deleted subnet."""
    for round_ in range(5):
        network = network_factory(cidr="10.0.0.0/24")
        subnet = network.subnets.get()

        def act(i, network=network, subnet=subnet, round_=round_):
            if i == 0:
                return services.subnet_delete(subnet=Subnet.objects.get(pk=subnet.pk))
            return services.instance_create(network=Network.objects.get(pk=network.pk), hostname=f"vm{round_}")

        results = run_concurrently(2, act)
        ok, errors = split(results)
        assert all(isinstance(e, ValidationError) for e in errors), errors
        assert len(errors) == 1
        subnet_left = Subnet.objects.filter(pk=subnet.pk).exists()
        assert subnet_left == Instance.objects.filter(network=network).exists()


def test_concurrent_renames_to_one_name(tenant_factory):
    tenant = tenant_factory()
    networks = [services.network_create(tenant=tenant, name=f"n{i}") for i in range(4)]
    ok, errors = split(run_concurrently(4, lambda i: services.network_update(
        network=Network.objects.get(pk=networks[i].pk), name="lab")))
    assert len(ok) == 1 and len(errors) == 3
    assert all(isinstance(e, ValidationError) and "already has a network named 'lab'" in e.messages[0]
               for e in errors), errors
    assert Network.objects.filter(tenant=tenant, name="lab").count() == 1


def test_gateway_move_racing_instance_creates(network_factory):
    """Moving the gateway onto the next free address while instances are created: never both."""
    network = network_factory(cidr="10.0.0.0/24", allocation_pools="10.0.0.10-10.0.0.20")
    subnet = network.subnets.get()

    def act(i):
        if i == 0:
            return services.subnet_update(subnet=Subnet.objects.get(pk=subnet.pk), gateway="10.0.0.10",
                                          allocation_pools="10.0.0.11-10.0.0.20")
        return services.instance_create(network=Network.objects.get(pk=network.pk), hostname=f"vm{i}",
                                        ip_address="10.0.0.10" if i == 1 else None)

    ok, errors = split(run_concurrently(4, act))
    assert all(isinstance(e, ValidationError) for e in errors), errors
    subnet.refresh_from_db()
    held = set(Instance.objects.filter(subnet=subnet).values_list("ip_address", flat=True))
    assert subnet.gateway not in held and subnet.dhcp_address not in held
