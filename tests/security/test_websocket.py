"""Every websocket route (``netdash.routing``): anonymous and other-tenant connections are refused, and malformed,
wrong-typed, binary and oversized frames get an error or a close — never a crashed consumer.

The routes are enumerated, not listed: a new websocket route fails ``test_every_websocket_route_is_covered`` until
its kwargs and its audience are added below. The live view's own protocol tests (tests/live) go deeper into its
frames; this file is the generic sweep over all routes, including the teaching diagnostics and shell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from security_helpers import record

from netdash.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

# URL kwarg → tenant B's object for it.
OTHER_TENANT_KWARGS: dict[str, Callable[[SimpleNamespace], Any]] = {
    "tenant_id": lambda w: w.b.pk,
    "network_id": lambda w: w.b_network.pk,
    "instance_id": lambda w: w.b_instance.pk,
}
# Route → who may open it: a member of the owning tenant, or only a superuser (all tenants, shared plumbing,
# the shell). Anything else is refused.
AUDIENCE = {
    "ws/live/tenants/<int:tenant_id>/": "member",
    "ws/live/all/": "superuser",
    "ws/teach/instances/<int:instance_id>/diagnostics/": "member",
    "ws/teach/networks/<int:network_id>/dhcp/diagnostics/": "member",
    "ws/teach/networks/<int:network_id>/segment/diagnostics/": "superuser",
    "ws/teach/instances/<int:instance_id>/shell/": "superuser",
    "ws/teach/networks/<int:network_id>/dhcp/shell/": "superuser",
    "ws/teach/networks/<int:network_id>/segment/shell/": "superuser",
}
OVERSIZED = 70 * 1024  # above every consumer's frame limit (live 4 KiB, teach 16 KiB)
GARBAGE = ["not json", "{", "[1, 2]", "5", "null", '{"type": 5}', '{"type": ["run"]}', '{"type": "drop_tables"}',
           '{"type": "run", "action": ["ping"], "args": "x"}', '{"type": "run", "action": "ping", "args": '
           '{"target": {"a": 1}, "count": 1e999}}', '{"type": "resize", "rows": 1e999, "cols": "x"}',
           '{"type": "input", "data": 5}', "[" * 2000, "\ud800"]


def routes() -> list[str]:
    return [str(p.pattern) for p in websocket_urlpatterns]


def path_for(route: str, world: SimpleNamespace) -> str:
    return "/" + re.sub(r"<int:(\w+)>", lambda m: str(OTHER_TENANT_KWARGS[m.group(1)](world)), route)


def app_for(user):
    inner = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        return await inner(dict(scope, user=user), receive, send)

    return app


@pytest.fixture
def world(isolation_world, user_factory, settings, monkeypatch):
    """Tenant A's user is the outsider; B's admin and a superuser are the rightful users. Shells are enabled, but
    no agent job is enqueued (the test only speaks to the consumer)."""
    settings.NETDASH_SHELL_ENABLED = True
    monkeypatch.setattr("teach.services.enqueue_on_commit", lambda *a, **k: None)
    isolation_world.root = user_factory(username="ws-root", is_superuser=True)
    return isolation_world


def test_every_websocket_route_is_covered():
    assert routes(), "no websocket routes found"
    for route in routes():
        assert route in AUDIENCE, f"new websocket route {route}: add its audience to AUDIENCE"
        for kwarg in re.findall(r"<\w+:(\w+)>", route):
            assert kwarg in OTHER_TENANT_KWARGS, f"{route}: add kwarg {kwarg} to OTHER_TENANT_KWARGS"


async def _refused(user, path: str) -> bool:
    comm = WebsocketCommunicator(app_for(user), path)
    connected, code = await comm.connect(timeout=5)
    if connected:
        await comm.disconnect()
        return False
    return code == 4403


@pytest.mark.parametrize("route", routes())
def test_anonymous_and_other_tenant_are_refused(world, route):
    path = path_for(route, world)

    async def body():
        assert await _refused(AnonymousUser(), path), f"anonymous opened {path}"
        assert await _refused(world.alpha, path), f"tenant A's user opened B's {path}"
        if AUDIENCE[route] == "superuser":
            assert await _refused(world.beta, path), f"a non-superuser opened {path}"
        if "tenant_id" in route:  # own tenant, another tenant's subnet in the query string
            own = path.replace(str(world.b.pk), str(world.a.pk))
            assert await _refused(world.alpha, f"{own}?subnet={world.b_subnet.pk}")
            assert await _refused(world.alpha, f"{own}?subnet=x")
        for missing in ("999999", "0"):
            assert await _refused(world.root, re.sub(r"/\d+/", f"/{missing}/", path, count=1)) or "all" in route

    async_to_sync(body)()
    record("websocket.refusals", examples=1)


async def _drain(comm: WebsocketCommunicator) -> list[dict]:
    out = []
    while not await comm.receive_nothing(timeout=0.15):
        out.append(await comm.receive_output(timeout=1))
    return out


@pytest.mark.parametrize("route", routes())
def test_bad_frames_get_errors_or_a_close_never_a_crash(world, route):
    user = world.root if AUDIENCE[route] == "superuser" else world.beta
    path = path_for(route, world)

    async def body():
        comm = WebsocketCommunicator(app_for(user), path)
        connected, code = await comm.connect(timeout=5)
        assert connected, f"{user} could not open {path} ({code})"
        await _drain(comm)  # snapshot / hello / status
        closed = False
        for frame in GARBAGE:
            await comm.send_to(text_data=frame)
            for message in await _drain(comm):  # receive_output re-raises a crash of the consumer
                assert message["type"] == "websocket.send" or message["type"] == "websocket.close", message
                closed = closed or message["type"] == "websocket.close"
            if closed:  # cut off after too many errors is fine; it must not have crashed
                break
        if not closed:
            await comm.send_to(bytes_data=b"\x00\x01")
            await _drain(comm)
            await comm.send_to(text_data="x" * OVERSIZED)
            out = await comm.receive_output(timeout=5)
            assert out == {"type": "websocket.close", "code": 1009}, out
        await comm.wait(timeout=5)

    async_to_sync(body)()
    record("websocket.bad_frames", examples=1, frames=len(GARBAGE) + 2)
