"""The live stream across a real Redis restart (issue 12 item 9).

Sequence numbers are Redis counters and Redis keeps nothing across a restart: the counter starts again at 1 and
every group membership is gone. What must hold anyway, on the test's own Redis (``restartable_redis``):

* a websocket open through the restart stays open and still gets later changes, after one fresh snapshot that
  carries what was published while Redis was down (the consumer rejoins its group);
* the numbering's new life is told apart from the old one by its epoch, so nothing later is dropped as
  "already seen" (``seq <= lastSeq``), in the consumer's frames and in the real page's JavaScript;
* a gap in the numbering costs the page exactly one resync.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from live_helpers import communicator
from redis import Redis

from tenants import events, services

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_TIMEOUT = 30  # seconds; generous because a loaded 2-core machine runs six suites at once


def run(coro_fn):
    return async_to_sync(coro_fn)()


async def next_frame(comm, kind: str) -> dict:
    """The next frame of ``kind`` ("snapshot"/"event"); any other frame in between fails the test."""
    frame = await comm.receive_json_from(timeout=FRAME_TIMEOUT)
    assert frame["type"] == kind, frame
    return frame


def test_events_of_a_new_redis_life_carry_a_new_epoch(two_tenants, restartable_redis):
    group = events.tenant_group(two_tenants["acme"].pk)
    first = events.next_sequence(group)
    assert events.next_sequence(group) == (first.epoch, first.seq + 1)
    assert events.stream_position(group) == (first.epoch, first.seq + 1)
    restartable_redis.restart()
    reborn = events.next_sequence(group)
    assert reborn.seq == 1, "the counter did not restart: this test is not testing a restart"
    assert reborn.epoch != first.epoch and reborn.epoch


def test_a_socket_open_through_a_redis_restart_gets_what_changed_and_later_changes(two_tenants, restartable_redis):
    acme, network = two_tenants["acme"], two_tenants["net_a"]

    async def rename(name: str) -> None:
        await sync_to_async(services.network_update)(network=network, name=name)

    async def body():
        comm = communicator(two_tenants["alice"], f"/ws/live/tenants/{acme.pk}/")
        connected, _ = await comm.connect(timeout=FRAME_TIMEOUT)
        assert connected
        first = await next_frame(comm, "snapshot")
        await rename("before-restart")
        before = await next_frame(comm, "event")
        assert (before["epoch"], before["seq"]) == (first["epoch"], first["seq"] + 1)

        await sync_to_async(restartable_redis.stop)()
        await rename("while-redis-was-down")  # saved; its event is lost with Redis
        await sync_to_async(restartable_redis.start)()

        # The consumer waited the outage out, joined its group again and re-sent the state: the socket stayed open.
        again = await next_frame(comm, "snapshot")
        assert [n["name"] for n in again["networks"]] == ["while-redis-was-down"]
        assert again["epoch"] != first["epoch"] and again["seq"] == 0
        await rename("after-restart")
        after = await next_frame(comm, "event")
        assert after["data"]["name"] == "after-restart"
        assert (after["epoch"], after["seq"]) == (again["epoch"], 1)
        await comm.disconnect()

    run(body)


# --- the real page ------------------------------------------------------------------------------------------

WAIT_MS = 30_000


@pytest.fixture
def daphne_on_restartable_redis(restartable_redis, django_db_blocker, tmp_path):
    """A real daphne whose channel layer and counters use the test's own Redis (the one it restarts)."""
    import os
    from pathlib import Path

    from django.core.management import call_command
    from django.db import connection

    from tenants.testing import serve_daphne

    with django_db_blocker.unblock():
        call_command("collectstatic", "--noinput", verbosity=0)
    log = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "live-continuity-daphne.log"
    with serve_daphne(connection.settings_dict["NAME"], log, probe="/static/live/live.js",
                      REDIS_URL=restartable_redis.url) as (base, _proc):
        yield {"url": base, "log": log}


@pytest.fixture
def page(daphne_on_restartable_redis, two_tenants, monkeypatch):
    """The Acme topology page in Chromium, rendered; ``page.stats()`` is its socket's counters."""
    from live_helpers import session_cookie
    from playwright.sync_api import sync_playwright

    from tenants.testing import launch_chromium

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/live/test_browser.py ``browser``
    server = daphne_on_restartable_redis
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context()
        context.add_cookies([session_cookie(two_tenants["alice"], server["url"])])
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(server["url"] + f"/live/tenants/{two_tenants['acme'].pk}/")
        tab.wait_for_function("() => document.getElementById('live-cy')?.dataset.rendered >= 1", timeout=WAIT_MS)
        tab.errors = errors
        tab.stats = lambda: tab.evaluate("() => window.netdashTopology.socket.stats")
        tab.server = server
        yield tab
        browser.close()


def in_thread(fn, /, *args, **kwargs):
    """Services publish through an event loop of their own; Playwright's sync API holds this thread's."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(fn, *args, **kwargs).result(timeout=60)
        finally:
            pool.submit(connections.close_all).result()


def wait_name(page, network_id: int, name: str) -> None:
    page.wait_for_function(f"() => window.netdashTopology.store.networks.get({network_id})?.name === '{name}'",
                           timeout=WAIT_MS)


def settled(page) -> dict:
    """The socket's counters once no resync is pending (requested but not yet answered)."""
    page.wait_for_function("() => { const s = window.netdashTopology.socket; "
                           "return s.resyncTimer === null && s.stats.snapshots === 1 + s.stats.resyncs; }",
                           timeout=WAIT_MS)
    return page.stats()


@pytest.mark.browser
def test_a_page_open_through_a_redis_restart_follows_later_changes(page, two_tenants, restartable_redis):
    network = two_tenants["net_a"]
    in_thread(services.network_update, network=network, name="before-restart")
    wait_name(page, network.pk, "before-restart")

    restartable_redis.stop()
    in_thread(services.network_update, network=network, name="while-redis-was-down")
    restartable_redis.start()
    wait_name(page, network.pk, "while-redis-was-down")  # from the snapshot the consumer re-sent
    in_thread(services.network_update, network=network, name="after-restart")
    wait_name(page, network.pk, "after-restart")  # numbered 1 again: dropped as seq <= lastSeq before the epoch

    stats = page.stats()
    assert stats["reconnects"] == 0, (stats, page.server["log"].read_text()[-3000:])
    assert page.errors == []


@pytest.mark.browser
def test_a_gap_in_the_numbering_costs_exactly_one_resync(page, two_tenants, restartable_redis, settings):
    network = two_tenants["net_a"]
    in_thread(services.network_update, network=network, name="in-order")
    wait_name(page, network.pk, "in-order")
    assert settled(page)["resyncs"] == 0

    # Three numbers skipped, as if three events had been lost on the way; then a burst of changes.
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    group = events.tenant_group(two_tenants["acme"].pk)
    Redis.from_url(restartable_redis.url).hincrby(f"{prefix}:stream:{group}", "seq", 3)
    for n in range(3):
        in_thread(services.network_update, network=network, name=f"after-gap-{n}")
    wait_name(page, network.pk, "after-gap-2")
    stats = settled(page)
    assert (stats["gaps"], stats["resyncs"], stats["snapshots"]) == (1, 1, 2), stats
    assert stats["reconnects"] == 0 and page.errors == []


@pytest.mark.browser
def test_a_counter_lost_under_an_open_page_loses_no_change(page, two_tenants, restartable_redis, settings):
    """The counter can go without the socket noticing (evicted, an operator's FLUSHDB, a restart quicker than the
    consumer's next read): the next event is numbered 1 of a new epoch and must be applied, with one resync."""
    network = two_tenants["net_a"]
    for n in range(3):  # lastSeq well above 1
        in_thread(services.network_update, network=network, name=f"old-life-{n}")
    wait_name(page, network.pk, "old-life-2")
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    Redis.from_url(restartable_redis.url).delete(f"{prefix}:stream:{events.tenant_group(two_tenants['acme'].pk)}")
    in_thread(services.network_update, network=network, name="new-life")
    wait_name(page, network.pk, "new-life")
    stats = settled(page)
    assert (stats["gaps"], stats["resyncs"], stats["snapshots"]) == (1, 1, 2), stats
    assert page.evaluate("() => window.netdashTopology.socket.lastSeq") == 1
    assert page.errors == []


# --- leases around the outage, with the real agent ----------------------------------------------------------

@pytest.fixture
def agent_on_restartable_redis(restartable_redis, host_clean, transactional_db, tmp_path):
    """``manage.py agent`` on the test database and the test's own Redis (reconcile every 3 s); stopped by pid."""
    import os
    import signal
    import subprocess
    import sys
    import time as _time

    from django.conf import settings as django_settings
    from django.db import connection

    from tenants.testing import reset_agent_queue

    reset_agent_queue()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{connection.settings_dict['NAME']}",
               REDIS_URL=restartable_redis.url, NETDASH_RECONCILE_SECONDS="3", PYTHONUNBUFFERED="1")
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "agent"], cwd=django_settings.BASE_DIR, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc.log = log
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            deadline = _time.monotonic() + 15
            while proc.poll() is None and _time.monotonic() < deadline:
                _time.sleep(0.1)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        try:
            reset_agent_queue()
        except Exception:  # noqa: BLE001 - Redis may be the one the test stopped
            pass


def _added(instances) -> set[str]:
    from tenants.choices import LeaseEventKind
    from tenants.models import LeaseEvent

    macs = {i.mac_address: i.hostname for i in instances}
    return {macs[m] for m in LeaseEvent.objects.filter(kind=LeaseEventKind.ADD, mac_address__in=macs)
            .values_list("mac_address", flat=True)}


@pytest.mark.host
def test_every_instance_created_around_a_redis_restart_gets_its_add_lease_event(
        agent_on_restartable_redis, restartable_redis, two_tenants):
    """Created before (realise jobs queued when Redis went), during (jobs not even enqueued) and after the
    outage: the agent's reconcile re-derives the lost jobs, and each instance's lease is recorded as an ADD."""
    import time as _time

    network = two_tenants["net_a"]
    deadline = _time.monotonic() + 60
    while not agent_on_restartable_redis.poll() and _time.monotonic() < deadline:
        if type(network).objects.get(pk=network.pk).status == "active":
            break
        _time.sleep(0.2)
    made = {"before": [services.instance_create(network=network, hostname=f"before-{n}") for n in range(2)]}
    restartable_redis.stop()
    made["during"] = [services.instance_create(network=network, hostname=f"during-{n}") for n in range(2)]
    restartable_redis.start()
    made["after"] = [services.instance_create(network=network, hostname=f"after-{n}") for n in range(2)]
    everyone = [i for group in made.values() for i in group]
    deadline = _time.monotonic() + 120  # a bound for a loaded machine, not a figure: reconcile runs every 3 s
    while len(_added(everyone)) < len(everyone) and _time.monotonic() < deadline:
        assert agent_on_restartable_redis.poll() is None, agent_on_restartable_redis.log.read_text()[-3000:]
        _time.sleep(0.25)
    missing = sorted({i.hostname for i in everyone} - _added(everyone))
    assert not missing, f"no ADD lease event for {missing}:\n{agent_on_restartable_redis.log.read_text()[-3000:]}"
