"""The namespace shell: superusers only, off unless enabled, unprivileged, time-limited, every session logged."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from teach_helpers import asynctest, communicator, receive_until

from teach.models import ShellSession
from tenants.hostspecs import names

pytestmark = [pytest.mark.django_db(transaction=True)]


def _path(instance) -> str:
    return f"/ws/teach/instances/{instance.pk}/shell/"


@asynctest
async def test_shell_refused_to_members_and_when_disabled(settings, user_factory, tenant_factory, network_factory):
    from tenants import services
    from tenants.choices import Role

    member = await sync_to_async(user_factory)()
    admin = await sync_to_async(user_factory)(is_superuser=True)

    def setup():
        tenant = tenant_factory()
        services.membership_set(tenant=tenant, user=member, role=Role.ADMIN)
        network = network_factory(tenant=tenant, cidr="192.168.1.0/24")
        return services.instance_create(network=network, hostname="vm")

    instance = await sync_to_async(setup)()
    for user, enabled in ((member, True), (admin, False)):  # a tenant admin is still not a superuser; off by default
        settings.NETDASH_SHELL_ENABLED = enabled
        comm = communicator(user, _path(instance))
        assert (await comm.connect())[0] is False
        # End the refused consumer inside this loop (as daphne would), not by cancellation when the loop closes.
        await comm.disconnect()
    assert await sync_to_async(ShellSession.objects.count)() == 0


def test_shell_page_refused(client, settings, user_factory, network_factory):
    from tenants import services

    network = network_factory(cidr="192.168.1.0/24")
    instance = services.instance_create(network=network, hostname="vm")
    url = reverse("teach:instance-shell", args=[instance.pk])
    client.force_login(user_factory(is_superuser=True))
    settings.NETDASH_SHELL_ENABLED = False
    assert client.get(url).status_code == 403
    settings.NETDASH_SHELL_ENABLED = True
    assert client.get(url).status_code == 200


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.host
@asynctest
async def test_shell_runs_unprivileged_in_the_namespace_and_is_logged(settings, overlap, agent_thread,
                                                                      user_factory):
    settings.NETDASH_SHELL_ENABLED = True
    admin = await sync_to_async(user_factory)(username="root-teacher", is_superuser=True)
    instance = overlap["tb"]["instance"]
    comm = communicator(admin, _path(instance))
    assert (await comm.connect())[0]
    try:
        await comm.send_json_to({"type": "input", "data": "ip -4 -o addr; id -u\n"})  # before ready: buffered
        frames = await receive_until(comm, lambda f: f["type"] == "ready")
        out = ""

        def saw(frame):
            nonlocal out
            out += frame.get("data", "")
            return f"{instance.ip_address}/24" in out and "\n65534" in out.replace("\r", "")

        await receive_until(comm, saw)
    finally:
        await comm.disconnect()
    session = await sync_to_async(ShellSession.objects.get)()
    deadline = time.monotonic() + 10
    while session.ended_at is None and time.monotonic() < deadline:
        await sync_to_async(session.refresh_from_db)()
        await asyncio.sleep(0.1)
    assert session.ended_at is not None and session.username == "root-teacher"
    assert session.namespace.endswith(f"inst-{instance.kernel_id}")
    assert "ip -4 -o addr" in session.keystrokes
    assert session.end_reason == "browser disconnected"
    assert session.pid and not _alive(session.pid)
    assert frames[0]["type"] == "status"


@pytest.mark.host
@asynctest
async def test_shell_time_limit(settings, overlap, agent_thread, user_factory):
    settings.NETDASH_SHELL_ENABLED = True
    settings.NETDASH_SHELL_SECONDS = 2
    admin = await sync_to_async(user_factory)(is_superuser=True)
    comm = communicator(admin, _path(overlap["ta"]["instance"]))
    assert (await comm.connect())[0]
    try:
        frames = await receive_until(comm, lambda f: f["type"] == "closed", timeout=20)
    finally:
        await comm.disconnect()
    assert "time limit" in frames[-1]["reason"]
    session = await sync_to_async(ShellSession.objects.get)()
    assert session.ended_at is not None and "time limit" in session.end_reason


@pytest.mark.host
def test_shells_left_by_a_dead_agent_are_reaped(overlap):
    from teach import hostside, jobs

    instance = overlap["ta"]["instance"]
    ns = names().inst_ns(instance.kernel_id)
    shell = hostside.spawn_shell(hostside.ShellCommand(ns))
    try:
        session = ShellSession.objects.create(username="ghost", kind="inst", object_id=instance.pk, namespace=ns,
                                              pid=shell.pid)
        # setpriv drops to the unprivileged user a moment after the spawn; on a busy machine wait for it.
        deadline = time.monotonic() + 10
        while not jobs._is_our_shell(shell.pid, ns) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert jobs.reap_stale_shells() == [shell.pid]
        shell.proc.wait(timeout=5)
        session.refresh_from_db()
        assert session.ended_at is not None and "agent restarted" in session.end_reason
    finally:
        shell.kill()


def test_shell_time_limit_comes_from_the_environment():
    """``NETDASH_SHELL_SECONDS`` (documented in the README) reaches the setting the agent's shell relay reads."""
    probe = "import django; django.setup(); from django.conf import settings; print(settings.NETDASH_SHELL_SECONDS)"
    env = dict(os.environ, NETDASH_SHELL_SECONDS="2", DJANGO_SETTINGS_MODULE="netdash.settings")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2"
