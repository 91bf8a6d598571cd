"""Shared fixtures for the whole suite: keep this file small and generic; layer-specific fixtures live next to
their tests (e.g. ``tests/foundation/conftest.py``)."""

import itertools
from pathlib import Path

import pytest

_counter = itertools.count(1)

# --- no silent skips ------------------------------------------------------------------------------------------
# The host, fault, end-to-end and browser suites are the ones that prove the product works on the real kernel;
# a skip there (not root, a module-level skip, an import turned into a skip) would let `make test` pass without
# them. Deselection (``-m "not slow"`` in pytest.ini: the long soak) is a choice, not a skip, and is not counted.
MUST_RUN_DIRS = ("host", "faults", "e2e")
MUST_RUN_MARKERS = ("host", "browser")
_TESTS_DIR = Path(__file__).resolve().parent
_must_run_skipped: list[str] = []


def _must_run(item: pytest.Item) -> bool:
    path = Path(item.path).resolve()
    in_dir = path.is_relative_to(_TESTS_DIR) and path.relative_to(_TESTS_DIR).parts[0] in MUST_RUN_DIRS
    return in_dir or any(item.get_closest_marker(m) for m in MUST_RUN_MARKERS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember every skipped host/fault/e2e/browser test (at setup, in the body, or by a skip mark)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and _must_run(item):
        _must_run_skipped.append(f"{item.nodeid}: {report.longrepr[-1] if report.longrepr else 'skipped'}")


def pytest_collectreport(report):
    """A whole module skipped at collection (``pytest.skip(allow_module_level=True)``, ``importorskip``) is never
    fine: its tests are not even counted."""
    if report.skipped:
        _must_run_skipped.append(f"{report.nodeid} (whole module): {report.longrepr[-1]}")


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a test that must run was skipped."""
    if _must_run_skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    """Say why the run failed although no test did."""
    if _must_run_skipped:
        terminalreporter.section("skipped tests that must run (this run FAILS)", red=True)
        for line in _must_run_skipped:
            terminalreporter.write_line(line, red=True)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """Sign-in and API-write rate limits are off in tests (load and fuzz tests would trip them); the tests of the
    limits themselves (tests/security/test_ratelimit_audit.py) set a rate explicitly."""
    settings.NETDASH_LOGIN_RATE = ""
    settings.NETDASH_API_WRITE_RATE = ""


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel-layer instance.

    Tests run consumers in event loops that die with the test. channels_redis binds its receive lock to the loop
    that first receives; a receive still pending when a test's loop closed would leave the process-wide instance
    locked to a dead loop, and the next test's consumer fails with "bound to a different event loop". (daphne runs
    one loop per process, so production never sees this.)
    """
    yield
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture
def user_factory(django_user_model):
    """Create users: ``user_factory()``, ``user_factory(username="bob", is_superuser=True)``."""

    def make(username=None, password="pw-not-used-elsewhere-1", **extra):
        username = username or f"user{next(_counter)}"
        if extra.pop("is_superuser", False):
            return django_user_model.objects.create_superuser(username=username, password=password, **extra)
        return django_user_model.objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def tenant_factory():
    """Create tenants through the service: ``tenant_factory()``, ``tenant_factory(slug="acme", quota_networks=1)``."""
    from tenants import services

    def make(name=None, slug=None, **quotas):
        n = next(_counter)
        return services.tenant_create(name=name or f"Tenant {n}", slug=slug or f"tenant-{n}", **quotas)

    return make


@pytest.fixture
def network_factory(tenant_factory):
    """Create a network (optionally with a first subnet) through the service."""
    from tenants import services

    def make(tenant=None, name=None, cidr=None, **subnet):
        tenant = tenant or tenant_factory()
        first = {"cidr": cidr, **subnet} if cidr else None
        return services.network_create(tenant=tenant, name=name or f"net-{next(_counter)}", subnet=first)

    return make


@pytest.fixture
def member_factory(user_factory):
    """A user in ``tenant`` with ``role`` (member/admin), added through the service."""
    from tenants import services

    def make(tenant, role="member", **user_kwargs):
        user = user_factory(**user_kwargs)
        services.membership_set(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def isolation_world(tenant_factory, member_factory, network_factory):
    """Tenant A (whose user is the "outsider") and tenant B, which owns one of everything.

    B's rows carry distinctive strings (``markers``) so an isolation test can assert that no response shown to
    A's user or to an anonymous client contains B's data. A and B use overlapping-looking but different CIDRs so a
    leaked CIDR is unambiguous.
    """
    from types import SimpleNamespace

    from tenants.models import Lease

    a = tenant_factory(name="Alpha Corp", slug="alpha")
    b = tenant_factory(name="Beta Secret Corp", slug="beta-secret")
    alpha = member_factory(a, role="admin", username="alpha-user")
    beta = member_factory(b, role="admin", username="beta-user")
    a_network = network_factory(tenant=a, name="alpha-net", cidr="192.168.1.0/24")
    b_network = network_factory(tenant=b, name="beta-secret-net", cidr="10.99.77.0/24",
                                domain_name="beta-secret.internal")
    b_subnet = b_network.subnets.get()
    from tenants import services

    b_instance = services.instance_create(network=b_network, hostname="beta-secret-vm")
    b_lease = Lease.objects.create(subnet=b_subnet, instance=b_instance, ip_address=b_instance.ip_address,
                                   mac_address=b_instance.mac_address, hostname="beta-secret-vm")
    return SimpleNamespace(
        a=a, b=b, alpha=alpha, beta=beta, a_network=a_network, b_network=b_network, b_subnet=b_subnet,
        b_instance=b_instance, b_lease=b_lease, b_membership=b.memberships.get(user=beta),
        markers=["beta-secret", "Beta Secret", "10.99.77.", b_instance.mac_address],
    )


@pytest.fixture
def host_clean():
    """Start and end with nothing carrying this test run's prefix on the host, even when the test fails."""
    from tenants.hostspecs import driver
    from tenants.testing import require_root

    require_root()
    driver().remove_orphans(set(), set(), wanted_routers=set())
    yield driver()
    driver().remove_orphans(set(), set(), wanted_routers=set())


@pytest.fixture
def fast_ipv6(settings):
    """HostConfig.fast_ipv6 for this test (no RS delay, no DAD in instances: SLAAC in ms instead of ~3.5 s); the
    cached config and driver are rebuilt around it, before and after."""
    from tenants.hostspecs import driver, host_config

    settings.NETDASH_FAST_IPV6 = True
    host_config.cache_clear()
    driver.cache_clear()
    yield
    host_config.cache_clear()
    driver.cache_clear()


@pytest.fixture
def agent_queue():
    """An empty agent queue (no jobs, registries or network locks) before and after the test."""
    import django_rq
    from django.conf import settings

    from tenants.testing import reset_agent_queue

    reset_agent_queue()
    yield django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    try:
        reset_agent_queue()
    except Exception:  # noqa: BLE001 - a test that stopped its Redis must still tear down
        pass


@pytest.fixture
def bearer_client():
    """``bearer_client(user)`` → an APIClient sending ``Authorization: Bearer <new token of user>``."""
    from rest_framework.test import APIClient

    from api import services

    def make(user):
        _, secret = services.api_token_create(user=user, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.secret = secret
        return client

    return make
