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
    from pathlib import Path

    from django.core.management import call_command
    from django.db import connection

    from tenants.testing import serve_daphne

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
        call_command("collectstatic", "--noinput", verbosity=0)
    # In ARTIFACTS_DIR so a CI failure can be read afterwards.
    log = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "live-daphne.log"
    with serve_daphne(db_name, log, probe="/static/live/live.js") as (base, _proc):
        yield {"url": base, "log": log}
