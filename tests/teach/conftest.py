"""Fixtures for the teaching tools: the real agent path (RQ on real Redis → jobs → host driver → kernel).

``agent_thread`` runs the agent's job loop in a background thread of the test process, so a view or consumer
that waits for an agent job (inspect) or streams from one (diagnostics, shell) is answered — the same jobs, the
same queue, as root. Every fixture removes what it created, even when the test fails.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from tenants import services
from tenants.choices import LeaseState, ObjectStatus, Role
from tenants.hostspecs import driver
from tenants.models import Instance, Lease, Tenant
from tenants.testing import launch_chromium, require_root, serve_daphne, settle


@pytest.fixture
def host_clean():
    """Start and end with nothing carrying this test run's prefix on the host."""
    require_root()
    driver().remove_orphans(set(), set(), wanted_routers=set())
    yield driver()
    from teach import jobs

    for relay in list(jobs.SESSIONS.values()):
        relay.request_stop("test finished")
    deadline = time.monotonic() + 5
    while jobs.SESSIONS and time.monotonic() < deadline:
        time.sleep(0.05)
    driver().remove_orphans(set(), set(), wanted_routers=set())


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run outside the main thread (no signal handlers, timer-based job timeouts)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


@pytest.fixture
def agent_thread(agent_queue):
    """The agent's worker loop in a thread: serves jobs until the test ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        from django.db import close_old_connections

        worker = ThreadWorker([agent_queue], connection=agent_queue.connection)
        while not stop.is_set():
            try:
                worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
            except BaseException as exc:  # surfaced at teardown
                errors.append(exc)
            finally:
                close_old_connections()
            stop.wait(0.05)

    thread = threading.Thread(target=loop, name="test-agent", daemon=True)
    thread.start()
    yield agent_queue
    stop.set()
    thread.join(timeout=30)
    assert not errors, errors


@pytest.fixture
def agent_loops(agent_thread):
    """The rest of the real agent beside ``agent_thread``'s worker: its lease watcher (which turns an instance
    active once its lease lands), process monitor, reconcile and periodic loops, in threads of this process."""
    from tenants.agent import Agent

    agent = Agent()
    agent.start_loops()
    yield agent
    agent.stop.set()
    for thread in agent.threads:
        thread.join(timeout=10)


def _leased(instance: Instance) -> bool:
    i = Instance.objects.get(pk=instance.pk)
    return i.status == ObjectStatus.ACTIVE and Lease.objects.filter(
        instance=i, state=LeaseState.ACTIVE, ip_address=i.ip_address).exists()


@pytest.fixture
def overlap(host_clean, agent_queue, user_factory):
    """Two tenants on 192.168.1.0/24, one instance and one member each, realised by the agent's jobs."""
    from tenants.models import Tenant

    made = {}
    for slug in ("ta", "tb"):
        tenant = Tenant.objects.create(name=f"Tenant {slug}", slug=slug)
        user = user_factory(username=f"user-{slug}")
        services.membership_set(tenant=tenant, user=user, role=Role.MEMBER)
        network = services.network_create(tenant=tenant, name="net",
                                          subnet={"cidr": "192.168.1.0/24", "domain_name": f"{slug}.internal"})
        instance = services.instance_create(network=network, hostname=f"{slug}-vm1")
        made[slug] = {"tenant": tenant, "user": user, "network": network, "instance": instance}
    assert settle(lambda: all(_leased(m["instance"]) for m in made.values()), timeout=20), "instances did not lease"
    for m in made.values():
        m["instance"].refresh_from_db()
        m["network"].refresh_from_db()
    return made


@pytest.fixture
def ipv6_only_instance(host_clean, agent_thread, user_factory):
    """``make(mode, cidr)`` → (member, instance): a tenant of its own with one IPv6-only network in ``mode``
    (ra and address mode alike) and an instance there, once ``agent_thread`` made it active. (The host is cleaned
    before the agent starts and after it stopped.)"""

    def make(mode: str, cidr: str):
        tenant = Tenant.objects.create(name="T6", slug="t6")
        user = user_factory(username="u6")
        services.membership_set(tenant=tenant, user=user, role=Role.MEMBER)
        network = services.network_create(tenant=tenant, name="n6", subnet={
            "cidr": cidr, "ipv6_ra_mode": mode, "ipv6_address_mode": mode})
        instance = services.instance_create(network=network, hostname="vm6")
        assert settle(lambda: Instance.objects.get(pk=instance.pk).status == ObjectStatus.ACTIVE, timeout=40)
        return user, instance

    return make


ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "artifacts"))


@pytest.fixture
def daphne_server(django_db_blocker):
    """daphne on a free loopback port, against the file-based test DB, with the shell enabled."""
    from django.core.management import call_command
    from django.db import connection

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
        call_command("collectstatic", "--noinput", verbosity=0)
    with serve_daphne(db_name, ARTIFACTS / "teach-daphne.log", probe="/static/teach/vendor/xterm/xterm.js",
                      NETDASH_SHELL_ENABLED="1") as (base, _proc):
        yield base


@pytest.fixture
def browser_page(daphne_server, monkeypatch):
    """``open_page(user, path)`` → a Chromium page of ``user`` on the daphne server; closed at the end."""
    from django.test import Client
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's ORM calls are still plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            def open_page(user, path):
                client = Client()
                client.force_login(user)
                context = browser.new_context(viewport={"width": 1300, "height": 900})
                context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": daphne_server,
                                      "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
                page = context.new_page()
                page.goto(daphne_server + path)
                return page

            yield open_page
        finally:
            browser.close()
