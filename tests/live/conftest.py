"""Fixtures for the live view: users in tenants, and websocket clients against the real channels_redis layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tenants import services
from tenants.choices import Role
from tenants.testing import launch_chromium


@pytest.fixture
def two_tenants(user_factory, tenant_factory, network_factory):
    """Two tenants that both use 192.168.1.0/24, each with one member, like the demo."""
    alice, bob = user_factory(username="alice"), user_factory(username="bob")
    acme, globex = tenant_factory(name="Acme", slug="acme"), tenant_factory(name="Globex", slug="globex")
    services.membership_set(tenant=acme, user=alice, role=Role.MEMBER)
    services.membership_set(tenant=globex, user=bob, role=Role.MEMBER)
    net_a = network_factory(tenant=acme, name="acme-net", cidr="192.168.1.0/24")
    net_b = network_factory(tenant=globex, name="globex-net", cidr="192.168.1.0/24")
    return {"alice": alice, "bob": bob, "acme": acme, "globex": globex, "net_a": net_a, "net_b": net_b}


@pytest.fixture(scope="module")
def daphne_server(request, django_db_setup, django_db_blocker):
    """A real daphne serving netdash against the (file-based) test database and the test Redis.

    Static files are collected first because DEBUG is off in the server, as in production (whitenoise then
    serves only collected files). A test module may set ``LIVE_FRAME_BYTES`` to have big snapshots sent in
    parts of that size (``live.protocol.snapshot_frames``), so its pages draw from reassembled snapshots.
    """
    import os
    from pathlib import Path

    from django.core.management import call_command
    from django.db import connection

    from tenants.testing import serve_daphne

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
        call_command("collectstatic", "--noinput", verbosity=0)
    # In ARTIFACTS_DIR so a CI failure can be read afterwards.
    log = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "live-daphne.log"
    frame = getattr(request.module, "LIVE_FRAME_BYTES", None)
    env = {"NETDASH_LIVE_FRAME_BYTES": str(frame)} if frame else {}
    with serve_daphne(db_name, log, probe="/static/live/live.js", **env) as (base, _proc):
        yield {"url": base, "log": log}


class RestartableRedis:
    """A redis-server of this test's own (``scripts/redis.sh``, stopped by its pid file), as the fault drills
    run it: no persistence, so a restart loses every counter, group membership and queued message."""

    def __init__(self, directory, port: int) -> None:
        self.dir = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def _script(self, *args: str) -> None:
        import subprocess

        from django.conf import settings

        subprocess.run(["bash", "scripts/redis.sh", *args], cwd=settings.BASE_DIR, check=True, capture_output=True)

    def start(self) -> None:
        self._script("start", str(self.port), str(self.dir))

    def stop(self) -> None:
        self._script("stop", str(self.dir))

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def restartable_redis(tmp_path, settings, monkeypatch):
    """Point this process's events and channel layer at a private Redis the test may restart."""
    import socket

    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    from tenants import events

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = RestartableRedis(tmp_path / "redis", port)
    redis.start()
    settings.REDIS_URL = redis.url
    settings.CHANNEL_LAYERS = {
        alias: {**conf, "CONFIG": {**conf["CONFIG"], "hosts": [{**conf["CONFIG"]["hosts"][0], "address": redis.url}]}}
        for alias, conf in settings.CHANNEL_LAYERS.items()
    }
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    monkeypatch.setattr(events, "_redis", None)
    try:
        yield redis
    finally:
        redis.stop()
        events._redis = None
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(monkeypatch):
    """Chromium; request it LAST so the other fixtures' rows (and their events) exist before it starts.

    Playwright's sync API keeps an event loop on this thread, which forbids ``async_to_sync`` (used by
    ``events.send_now``) here: changes that publish go through ``django_side`` (another thread). Plain reads
    on this thread are synchronous test code, so Django's async-safety guard would be a false alarm.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()
