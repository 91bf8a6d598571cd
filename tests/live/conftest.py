"""Fixtures for the live view: users in tenants, and websocket clients against the real channels_redis layer."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.choices import Role


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
def daphne_server(django_db_setup, django_db_blocker):
    """A real daphne serving netdash against the (file-based) test database and the test Redis.

    Static files are collected first because DEBUG is off in the server, as in production (whitenoise then
    serves only collected files).
    """
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from django.core.management import call_command
    from django.db import connection

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
        call_command("collectstatic", "--noinput", verbosity=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_name}", DEBUG="0")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # In ARTIFACTS_DIR so a CI failure can be read afterwards.
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    log = artifacts / "live-daphne.log"
    root = Path(__file__).resolve().parents[2]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "netdash.asgi:application"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/static/live/live.js", timeout=1).read()  # noqa: S310 (loopback)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"daphne did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)
    yield {"url": base, "log": log}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
